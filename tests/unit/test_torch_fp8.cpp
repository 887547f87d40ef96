// FP8 training (nanochat/fp8.h) on the CPU, where libtorch's _scaled_mm computes the same quantized products as
// cuBLAS's FP8 kernel does on a GPU: the quantizer's scale and saturation, fp8_linear's forward and three gradients
// against fp8_linear_reference (dequantized operands, plain fp32 matmuls), nanochat's layer filter, Fp8Disabled, and
// a model whose layers run in FP8 training to the same loss as without.
//   build/tests/test_torch --gtest_filter='Fp8*'
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nanochat/fp8.h"
#include "nanochat/gpt.h"

using namespace nanochat;

namespace {

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  auto g = got.to(torch::kDouble), w = want.to(torch::kDouble);
  return ((g - w).abs().max() / w.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace

TEST(Fp8, QuantizerMapsTheLargestMagnitudeToTheFormatsMax) {
  auto x = torch::tensor({0.5f, -2.0f, 1.0f, 0.0f});
  auto [q, inv] = to_fp8(x, torch::kFloat8_e4m3fn);
  EXPECT_EQ(q.scalar_type(), torch::kFloat8_e4m3fn);
  EXPECT_EQ(inv.dim(), 0);
  EXPECT_FLOAT_EQ(q.to(torch::kFloat)[1].item<float>(), -448.0f);  // amax -> -fp8_max exactly
  EXPECT_FLOAT_EQ(inv.item<float>(), 2.0f / 448.0f);
  EXPECT_TRUE(torch::allclose(q.to(torch::kFloat) * inv, x, 0.07, 0));  // 3 mantissa bits
  auto [g, ginv] = to_fp8(x, torch::kFloat8_e5m2);
  EXPECT_FLOAT_EQ(g.to(torch::kFloat)[1].item<float>(), -57344.0f);
  // All zeros: the scale is clamped, no NaN.
  auto [z, zinv] = to_fp8(torch::zeros({8}), torch::kFloat8_e4m3fn);
  EXPECT_TRUE(torch::isfinite(zinv).item<bool>());
  EXPECT_EQ(z.to(torch::kFloat).abs().sum().item<float>(), 0.0f);
}

TEST(Fp8, LinearForwardAndGradientsMatchTheDequantizedReference) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto x = torch::randn({2, 24, 64}).to(dtype).requires_grad_();
    auto w = (torch::randn({48, 64}) * 0.1).requires_grad_();  // fp32 master weight
    auto xr = x.detach().clone().requires_grad_(), wr = w.detach().clone().requires_grad_();
    auto y = fp8_linear(x, w), yr = fp8_linear_reference(xr, wr);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 24, 48}));
    EXPECT_EQ(y.scalar_type(), dtype);
    auto dy = torch::randn_like(yr);
    y.backward(dy);
    yr.backward(dy);
    EXPECT_EQ(w.grad().scalar_type(), torch::kFloat);  // accumulated into the fp32 master
    // Same fp8 operands on both sides; only the summation order and the output rounding differ.
    const double tol = dtype == torch::kFloat ? 1e-5 : 1e-2;
    EXPECT_LT(rel_err(y, yr), tol);
    EXPECT_LT(rel_err(x.grad(), xr.grad()), tol);
    EXPECT_LT(rel_err(w.grad(), wr.grad()), tol);
    // And FP8 is an approximation of the plain product, not something else: within a few percent.
    auto plain = torch::matmul(x.detach().to(torch::kFloat), w.detach().t());
    EXPECT_LT(rel_err(y, plain), 0.1);
    EXPECT_GT(rel_err(y.to(torch::kFloat), plain), 0.0);  // and it really was quantized
  }
}

TEST(Fp8, RefusesShapesTheFp8KernelsCannotTake) {
  auto refused = [](const torch::Tensor& x, const torch::Tensor& w, const std::string& why) {
    try {
      fp8_linear(x, w);
      ADD_FAILURE() << "accepted " << x.sizes() << " x " << w.sizes();
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused(torch::randn({4, 40}), torch::randn({32, 40}), "multiples of 16");   // a 40-wide weight
  refused(torch::randn({5, 64}), torch::randn({32, 64}), "multiple of 16");    // 5 rows: the grad_weight GEMM
}

namespace {
GPTConfig fp8_config() {
  GPTConfig c;
  c.sequence_len = 32;
  c.vocab_size = 256;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_kv_head = 2;
  c.n_embd = 128;
  c.window_pattern = "L";
  return c;
}
}  // namespace

TEST(Fp8, ConvertsTheLayersNanochatsFilterAdmits) {
  torch::manual_seed(0);
  GPT model(fp8_config());
  model->init_weights();
  // Per block c_q, c_k, c_v, c_proj, c_fc, mlp.c_proj (all >= 128 and multiples of 16); ve_gate (12 -> 2) on one
  // layer, smear_gate (24 -> 1) and the lm_head of the fused loss are skipped.
  auto n = convert_to_float8_training(*model);
  EXPECT_EQ(n.linear_layers, 2 * 6 + 1 + 1 + 1);
  EXPECT_EQ(n.converted, 12);
  EXPECT_TRUE(model->blocks[0]->attn->c_q->fp8);
  EXPECT_FALSE(model->lm_head->fp8);
  EXPECT_FALSE(model->smear_gate->fp8);
  {
    Fp8Disabled plain(*model);
    EXPECT_FALSE(model->blocks[1]->mlp->c_fc->fp8);
  }
  EXPECT_TRUE(model->blocks[1]->mlp->c_fc->fp8);
  // The plain-logits path calls the lm_head itself: then it is converted too.
  GPT plain_loss(fp8_config());
  plain_loss->fused_loss = false;
  EXPECT_EQ(convert_to_float8_training(*plain_loss).converted, 13);
}

TEST(Fp8, ModelTrainsToTheSameLossAsWithout) {
  auto make = [] {
    torch::manual_seed(1);
    GPT m(fp8_config());
    m->init_weights();
    torch::NoGradGuard ng;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.02);  // init leaves c_proj at zero
    return m;
  };
  GPT ref = make(), fp8 = make();
  convert_to_float8_training(*fp8);
  torch::manual_seed(2);
  auto idx = torch::randint(0, 256, {2, 32}), tgt = torch::randint(0, 256, {2, 32});
  auto lr = ref->forward(idx, tgt), lf = fp8->forward(idx, tgt);
  EXPECT_NEAR(lf.item<double>(), lr.item<double>(), 0.02 * lr.item<double>());
  lr.backward();
  lf.backward();
  // The matrices' gradients; a scalar's (the lambdas) is a sum over every position, in which FP8's noise need not
  // cancel the way the exact terms do.
  for (auto& [name, p] : fp8->named_parameters().pairs()) {
    auto want = ref->named_parameters()[name].grad();
    if (p.dim() != 2 || !want.defined() || want.abs().max().item<double>() == 0) continue;
    EXPECT_LT(rel_err(p.grad(), want), 0.25) << name;
  }
}
