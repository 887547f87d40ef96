// small_linear against torch::linear: every row count the kernel takes, K with and without a vector tail,
// batched and strided inputs, and the cases where it must step aside.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nanochat/cpu/small_linear.h"

using namespace nanochat;

TEST(SmallLinear, MatchesTorchLinear) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (int64_t K : {1, 15, 16, 64, 384, 401}) {
    for (int64_t N : {1, 7, 384, 1000}) {
      torch::Tensor w = torch::randn({N, K});
      for (int64_t M = 1; M <= kSmallLinearMaxRows; ++M) {
        torch::Tensor x = torch::randn({M, K});
        ASSERT_TRUE(small_linear_applies(x, w));
        torch::Tensor got = small_linear(x, w), want = torch::linear(x, w);
        ASSERT_EQ(got.sizes(), want.sizes());
        // Summation order differs from BLAS: fp32 rounding of a K-term dot product.
        EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5 * std::sqrt(static_cast<double>(K))))
            << "K=" << K << " N=" << N << " M=" << M << " max err " << (got - want).abs().max().item<float>();
      }
    }
  }
}

TEST(SmallLinear, BatchedAndStridedInputs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({96, 32});
  torch::Tensor x3 = torch::randn({2, 1, 32});  // [B, T=1, C] as in decoding
  EXPECT_TRUE(torch::allclose(small_linear(x3, w), torch::linear(x3, w), 1e-5, 1e-5));
  EXPECT_EQ(small_linear(x3, w).sizes(), (std::vector<int64_t>{2, 1, 96}));
  torch::Tensor wide = torch::randn({3, 64});
  torch::Tensor xs = wide.slice(1, 0, 64, 2);  // non-contiguous [3, 32]
  EXPECT_TRUE(torch::allclose(small_linear(xs, w), torch::linear(xs, w), 1e-5, 1e-5));
  torch::Tensor wt = torch::randn({32, 96}).t();  // non-contiguous weight [96, 32]
  EXPECT_TRUE(torch::allclose(small_linear(x3, wt), torch::linear(x3, wt), 1e-5, 1e-5));
}

TEST(SmallLinear, StepsAsideWhenItShouldNot) {
  torch::Tensor w = torch::randn({8, 16});
  torch::Tensor many = torch::randn({kSmallLinearMaxRows + 1, 16});
  EXPECT_FALSE(small_linear_applies(many, w));
  EXPECT_FALSE(small_linear_applies(torch::randn({1, 16}, torch::kBFloat16), w.to(torch::kBFloat16)));
  EXPECT_FALSE(small_linear_applies(torch::randn({1, 15}), w));
  torch::Tensor wg = w.clone().requires_grad_(true);
  EXPECT_FALSE(small_linear_applies(torch::randn({1, 16}), wg));  // autograd is recording
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(small_linear_applies(torch::randn({1, 16}), wg));
}

// Packed weights (bf16, int8 with a scale per row) against torch::linear on the fp32 values they stand for: the
// kernel widens them exactly, so only the summation order differs.
TEST(SmallLinear, PackedWeightsMatchTheirFp32Values) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  for (int64_t K : {1, 15, 16, 64, 401}) {
    for (int64_t N : {1, 7, 384}) {
      const torch::Tensor w = torch::randn({N, K});
      const torch::Tensor scale = torch::rand({N}) * 0.01 + 1e-3;
      const torch::Tensor q = torch::randint(-127, 128, {N, K}).to(torch::kChar);
      const torch::Tensor bf = w.to(torch::kBFloat16);
      const double tol = 1e-5 * std::sqrt(static_cast<double>(K));
      for (int64_t M = 1; M <= kSmallLinearMaxRows; ++M) {
        torch::Tensor x = torch::randn({M, K});
        ASSERT_TRUE(small_linear_applies(x, q, scale));
        ASSERT_TRUE(small_linear_applies(x, bf));
        torch::Tensor want_q = torch::linear(x, q.to(torch::kFloat) * scale.unsqueeze(1));
        torch::Tensor got_q = small_linear(x, q, scale);
        EXPECT_TRUE(torch::allclose(got_q, want_q, 1e-5, tol * 127 * 0.011))
            << "int8 K=" << K << " N=" << N << " M=" << M << " max err " << (got_q - want_q).abs().max().item<float>();
        torch::Tensor want_b = torch::linear(x, bf.to(torch::kFloat)), got_b = small_linear(x, bf);
        EXPECT_TRUE(torch::allclose(got_b, want_b, 1e-5, tol))
            << "bf16 K=" << K << " N=" << N << " M=" << M << " max err " << (got_b - want_b).abs().max().item<float>();
      }
    }
  }
}

TEST(SmallLinear, PackedWeightsNeedTheirScaleExactly) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 16});
  torch::Tensor q = torch::zeros({8, 16}, torch::kChar), scale = torch::ones({8});
  EXPECT_FALSE(small_linear_applies(x, q));                    // int8 without its scale
  EXPECT_FALSE(small_linear_applies(x, q, torch::ones({7})));  // a scale per row, not fewer
  EXPECT_FALSE(small_linear_applies(x, q, scale.to(torch::kDouble)));
  EXPECT_FALSE(small_linear_applies(x, q.to(torch::kBFloat16), scale));  // bf16 has no scale
  EXPECT_FALSE(small_linear_applies(x, q.to(torch::kHalf)));
  EXPECT_TRUE(small_linear_applies(x, q, scale));
}

// Output features are split across threads; each one's sum is computed the same way whichever thread takes it, so
// one thread and two give the same bits (decoding's greedy tokens must not depend on the thread count).
TEST(SmallLinear, OneOrTwoThreadsGiveTheSameBits) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const int threads = torch::get_num_threads();
  torch::Tensor w = torch::randn({4096, 384}), scale = torch::rand({4096}) * 0.01 + 1e-3;
  torch::Tensor w8 = torch::randint(-127, 128, {4096, 384}).to(torch::kChar);
  for (int64_t M = 1; M <= kSmallLinearMaxRows; ++M) {
    torch::Tensor x = torch::randn({M, 384});
    torch::set_num_threads(1);
    torch::Tensor one = small_linear(x, w), one8 = small_linear(x, w8, scale);
    torch::set_num_threads(2);
    torch::Tensor two = small_linear(x, w), two8 = small_linear(x, w8, scale);
    EXPECT_TRUE(torch::equal(one, two)) << "M=" << M;
    EXPECT_TRUE(torch::equal(one8, two8)) << "M=" << M;
  }
  torch::set_num_threads(threads);
}
