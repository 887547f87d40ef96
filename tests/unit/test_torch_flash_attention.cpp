// flash_attention: the blocked causal/sliding-window attention equals the plain masked-softmax reference
// (outputs and gradients), with GQA, windows smaller and larger than the block, queries offset into a longer
// key sequence (the KV-cache case), and single-token decode.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nanochat/flash_attention.h"

using namespace nanochat;

namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Case {
  int64_t B, Tq, Tk, H, Hkv, D, window;
};

void check(const Case& c) {
  torch::manual_seed(c.Tq * 131 + c.window + c.Tk);
  auto q = torch::randn({c.B, c.Tq, c.H, c.D}, torch::requires_grad());
  auto k = torch::randn({c.B, c.Tk, c.Hkv, c.D}, torch::requires_grad());
  auto v = torch::randn({c.B, c.Tk, c.Hkv, c.D}, torch::requires_grad());
  auto y = windowed_attention(q, k, v, c.window);
  auto y_ref = attention_reference(q, k, v, c.window);
  ASSERT_EQ(y.sizes(), q.sizes());
  EXPECT_LT(max_abs_diff(y, y_ref), 1e-5) << "Tq=" << c.Tq << " Tk=" << c.Tk << " w=" << c.window;
  auto go = torch::randn_like(y);
  auto g = torch::autograd::grad({y}, {q, k, v}, {go});
  auto g_ref = torch::autograd::grad({y_ref}, {q, k, v}, {go});
  for (int i = 0; i < 3; ++i)
    EXPECT_LT(max_abs_diff(g[i], g_ref[i]), 1e-4) << "grad " << i << " Tq=" << c.Tq << " w=" << c.window;
}

}  // namespace

TEST(FlashAttention, BlockedEqualsReferenceTraining) {
  for (int64_t w : {-1, 0, 1, 9, 128, 200, 300, 1000}) check({2, 300, 300, 4, 2, 16, w});
  check({1, 64, 64, 2, 2, 8, -1});  // a single block
  check({1, 257, 257, 6, 3, 8, 128});
}

TEST(FlashAttention, BlockedEqualsReferenceWithCacheOffset) {
  for (int64_t w : {-1, 5, 130}) {
    check({2, 7, 300, 4, 2, 16, w});    // prefill continuing a cache
    check({2, 1, 300, 4, 1, 16, w});    // decode
    check({1, 200, 333, 2, 2, 16, w});  // several query blocks against a longer cache
  }
}

TEST(FlashAttention, ReferenceSemantics) {
  // Row r (absolute position p) sees exactly keys max(0, p - w) .. p: with value = one-hot position, the output
  // weights are non-zero only there.
  int64_t T = 20, w = 3;
  auto q = torch::randn({1, T, 1, T});
  auto k = torch::randn({1, T, 1, T});
  auto v = torch::eye(T).view({1, T, 1, T});
  auto y = windowed_attention(q, k, v, w).view({T, T});  // y[p, c] = attention weight of key c for query p
  for (int64_t p = 0; p < T; ++p)
    for (int64_t c = 0; c < T; ++c) {
      bool allowed = c <= p && p - c <= w;
      if (allowed)
        EXPECT_GT(y[p][c].item<float>(), 0.0f);
      else
        EXPECT_EQ(y[p][c].item<float>(), 0.0f) << p << "," << c;
    }
}

TEST(FlashAttention, KVCacheWritesInPlaceAndAttends) {
  torch::manual_seed(0);
  int64_t B = 2, Tmax = 16, Hkv = 2, H = 4, D = 8;
  auto k_cache = torch::zeros({B, Tmax, Hkv, D}), v_cache = torch::zeros({B, Tmax, Hkv, D});
  auto k_all = torch::randn({B, 10, Hkv, D}), v_all = torch::randn({B, 10, Hkv, D});
  auto q_all = torch::randn({B, 10, H, D});
  flash_attn_with_kvcache(q_all.narrow(1, 0, 6), k_cache, v_cache, k_all.narrow(1, 0, 6), v_all.narrow(1, 0, 6), 0, 4);
  auto y = flash_attn_with_kvcache(q_all.narrow(1, 6, 4), k_cache, v_cache, k_all.narrow(1, 6, 4),
                                   v_all.narrow(1, 6, 4), 6, 4);
  EXPECT_TRUE(k_cache.narrow(1, 0, 10).equal(k_all));
  EXPECT_TRUE(v_cache.narrow(1, 0, 10).equal(v_all));
  EXPECT_EQ(k_cache.narrow(1, 10, 6).abs().sum().item<float>(), 0.0f);
  auto y_full = attention_reference(q_all, k_all, v_all, 4);
  EXPECT_LT(max_abs_diff(y, y_full.narrow(1, 6, 4)), 1e-5);
}
