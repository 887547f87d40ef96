// CUDA ops against their plain references (labelled `gpu` in ctest: `ctest -L gpu`). Each test compares a CUDA
// path with the CPU/plain libtorch path it replaces. On a machine without a CUDA device (or in the CPU build)
// every test here reports "skipped: no CUDA device" rather than passing.
//   build/tests/test_cuda                       # or: ctest --test-dir build -L gpu
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nanochat/cuda/relu_square.h"
#include "nanochat/flash_attention.h"
#include "nanochat/gpt.h"

using namespace nanochat;

namespace {

#define REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "skipped: no CUDA device"

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).abs().max().item<double>();
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
  const std::string dir = std::string(NANOCHAT_FIXTURES) + "/gpt_tiny/";
  std::ifstream f(dir + "meta.json");
  auto cfg = config_from_json(nlohmann::json::parse(f)["config"]);
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
  auto gc = cpu->named_parameters();
  for (auto& p : gpu->named_parameters()) {
    auto ref = gc[p.key()].grad();
    if (!ref.defined()) continue;
    EXPECT_LE(max_abs_diff(p.value().grad(), ref), 5e-2 * (1e-3 + ref.abs().max().item<double>())) << p.key();
  }
}
