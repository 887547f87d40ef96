// CUDA ops against their plain references (labelled `gpu` in ctest: `ctest -L gpu`). Each test compares a CUDA
// path with the CPU/plain libtorch path it replaces. On a machine without a CUDA device (or in the CPU build)
// every test here reports "skipped: no CUDA device" rather than passing.
//   build/tests/test_cuda                       # or: ctest --test-dir build -L gpu
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <tuple>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nanochat/cuda/relu_square.h"
#include "nanochat/flash_attention.h"
#include "nanochat/fp8.h"
#include "nanochat/gpt.h"

using namespace nanochat;

namespace {

#define REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "skipped: no CUDA device"

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).abs().max().item<double>();
}

// The tiny fixture model's config (tests/fixtures/gpt_tiny).
GPTConfig tiny_config() {
  std::ifstream f(std::string(NANOCHAT_FIXTURES) + "/gpt_tiny/meta.json");
  return config_from_json(nlohmann::json::parse(f)["config"]);
}

// Every parameter's gradient of `got` within a relative tolerance of `want`'s (same parameter names).
void expect_same_grads(GPTImpl& got, GPTImpl& want, double rel) {
  auto w = want.named_parameters();
  for (auto& p : got.named_parameters()) {
    auto ref = w[p.key()].grad();
    if (!ref.defined()) continue;
    EXPECT_LE(max_abs_diff(p.value().grad(), ref), rel * (1e-3 + ref.abs().max().item<double>())) << p.key();
  }
}

}  // namespace

TEST(CudaOps, ReluSquareMatchesReference) {
  REQUIRE_CUDA();
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto x = torch::randn({3, 257, 129}, torch::TensorOptions().device(torch::kCUDA).dtype(dtype)).requires_grad_();
    auto xr = x.detach().clone().requires_grad_();
    auto dy = torch::randn_like(x);
    auto y = relu_square(x), yr = relu_square_reference(xr);
    y.backward(dy);
    yr.backward(dy);
    const double tol = dtype == torch::kFloat ? 1e-6 : 2e-2;
    EXPECT_LE(max_abs_diff(y, yr), tol * (1 + yr.abs().max().item<double>()));
    EXPECT_LE(max_abs_diff(x.grad(), xr.grad()), tol * (1 + xr.grad().abs().max().item<double>()));
  }
}

TEST(CudaOps, WindowedAttentionMatchesCpuReference) {
  REQUIRE_CUDA();
  torch::manual_seed(0);
  // GQA (4 query heads over 2 kv heads), a window shorter than the sequence, and a full causal one.
  auto q = torch::randn({2, 96, 4, 32}), k = torch::randn({2, 96, 2, 32}), v = torch::randn({2, 96, 2, 32});
  for (int64_t window : {int64_t(-1), int64_t(17)}) {
    auto ref = attention_reference(q, k, v, window);
    auto got = flash_attn_func(q.cuda(), k.cuda(), v.cuda(), window);
    EXPECT_LE(max_abs_diff(got, ref), 1e-4) << "window " << window;
  }
}

TEST(CudaOps, GptForwardAndGradientsMatchCpu) {
  REQUIRE_CUDA();
  const GPTConfig cfg = tiny_config();
  torch::manual_seed(0);
  GPT cpu(cfg);
  cpu->init_weights();
  GPT gpu(cfg);
  {
    torch::NoGradGuard ng;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  gpu->to(torch::kCUDA);
  auto idx = torch::randint(0, cfg.vocab_size, {2, 64}, torch::kLong);
  auto targets = torch::randint(0, cfg.vocab_size, {2, 64}, torch::kLong);
  auto lc = cpu->forward(idx, targets);
  auto lg = gpu->forward(idx.cuda(), targets.cuda());
  // fp32 on both sides unless NANOCHAT_DTYPE says otherwise: TF32 matmuls on the GPU are the main difference.
  EXPECT_NEAR(lg.item<double>(), lc.item<double>(), 2e-2);
  lc.backward();
  lg.backward();
  expect_same_grads(*gpu, *cpu, 5e-2);
}

TEST(CudaOps, FlashAttentionWithWindowsMatchesCpuReference) {
  REQUIRE_CUDA();
  torch::manual_seed(1);
  // bf16 takes the FlashAttention kernels (fp32 above takes SDPA): GQA, a window, the full causal case, and a
  // query block shorter than the keys (KV-cache prefill), forward and all three gradients.
  for (auto [Tq, Tk, window] : {std::tuple<int64_t, int64_t, int64_t>{128, 128, -1}, {128, 128, 31}, {40, 128, 31}}) {
    auto q = torch::randn({2, Tq, 4, 64}), k = torch::randn({2, Tk, 2, 64}), v = torch::randn({2, Tk, 2, 64});
    auto qr = q.clone().requires_grad_(), kr = k.clone().requires_grad_(), vr = v.clone().requires_grad_();
    auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
    auto qg = q.to(opts).requires_grad_(), kg = k.to(opts).requires_grad_(), vg = v.to(opts).requires_grad_();
    auto ref = attention_reference(qr, kr, vr, window);
    auto got = windowed_attention(qg, kg, vg, window);
    auto dy = torch::randn_like(ref);
    ref.backward(dy);
    got.backward(dy.to(opts));
    const std::string where = "Tq " + std::to_string(Tq) + " window " + std::to_string(window);
    EXPECT_LE(max_abs_diff(got, ref), 3e-2) << where;
    EXPECT_LE(max_abs_diff(qg.grad(), qr.grad()), 5e-2 * (1 + qr.grad().abs().max().item<double>())) << where;
    EXPECT_LE(max_abs_diff(kg.grad(), kr.grad()), 5e-2 * (1 + kr.grad().abs().max().item<double>())) << where;
    EXPECT_LE(max_abs_diff(vg.grad(), vr.grad()), 5e-2 * (1 + vr.grad().abs().max().item<double>())) << where;
  }
}

TEST(CudaOps, Fp8LinearMatchesTheDequantizedReference) {
  REQUIRE_CUDA();
  // cuBLAS FP8 needs sm89+; elsewhere fp8_linear must fail with libtorch's error, which base_train turns into a
  // one-line refusal of --fp8.
  auto x = torch::randn({64, 256}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16));
  auto w = (torch::randn({128, 256}, torch::TensorOptions().device(torch::kCUDA)) * 0.05);
  torch::Tensor y;
  try {
    y = fp8_linear(x, w);
  } catch (const c10::Error& e) {
    GTEST_SKIP() << "skipped: this GPU has no FP8 matmuls: " << e.what_without_backtrace();
  }
  auto xr = x.detach().clone().requires_grad_(), wr = w.detach().clone().requires_grad_();
  auto xg = x.detach().clone().requires_grad_(), wg = w.detach().clone().requires_grad_();
  y = fp8_linear(xg, wg);
  auto yr = fp8_linear_reference(xr, wr);
  auto dy = torch::randn_like(yr);
  y.backward(dy);
  yr.backward(dy);
  auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return max_abs_diff(a, b) / b.abs().max().item<double>();
  };
  EXPECT_LT(rel(y, yr), 2e-2);  // forward uses cuBLAS's fast accumulation
  EXPECT_LT(rel(xg.grad(), xr.grad()), 1e-2);
  EXPECT_LT(rel(wg.grad(), wr.grad()), 1e-2);
}

TEST(CudaOps, GradCheckpointGivesTheSameGradients) {
  REQUIRE_CUDA();
  const GPTConfig cfg = tiny_config();
  auto make = [&] {
    torch::manual_seed(0);
    GPT m(cfg, torch::kCUDA);
    m->init_weights();
    return m;
  };
  GPT ref = make(), ck = make();
  ck->grad_checkpoint = true;
  auto idx = torch::randint(0, cfg.vocab_size, {2, 64}, torch::kLong).cuda();
  auto lr = ref->forward(idx, idx), lc = ck->forward(idx, idx);
  EXPECT_NEAR(lc.item<double>(), lr.item<double>(), 1e-3);
  lr.backward();
  lc.backward();
  expect_same_grads(*ck, *ref, 1e-2);
}

TEST(CudaOps, RmsNormMatchesTheCpuPath) {
  REQUIRE_CUDA();
  torch::manual_seed(2);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto x = (torch::randn({4, 33, 96}) * 3).to(dtype);
    auto xc = x.clone().requires_grad_(), xg = x.cuda().requires_grad_();
    auto yc = rms_norm(xc), yg = rms_norm(xg);
    auto dy = torch::randn_like(yc);
    yc.backward(dy);
    yg.backward(dy.cuda());
    const double tol = dtype == torch::kFloat ? 1e-5 : 2e-2;
    EXPECT_LE(max_abs_diff(yg, yc), tol * (1 + yc.abs().max().item<double>()));
    EXPECT_LE(max_abs_diff(xg.grad(), xc.grad()), tol * (1 + xc.grad().abs().max().item<double>()));
  }
}
