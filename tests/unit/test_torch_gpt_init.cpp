// GPT::init_weights follows Python's init order and distributions, so seed 42 gives Python's model.
// The expected values below were taken from PyTorch (1.13, CPU generator, manual_seed(42)) running nanochat's
// init sequence for this config; the structural checks cover the rest of nanochat/gpt.py GPT.init_weights.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "nanochat/gpt.h"

using namespace nanochat;

namespace {
GPTConfig tiny() {
  GPTConfig c;
  c.sequence_len = 512;
  c.vocab_size = 300;
  c.n_layer = 4;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 64;
  return c;
}
}  // namespace

TEST(GptInit, SeededInitEqualsPythonSequence) {
  torch::manual_seed(42);
  GPT model(tiny());
  model->init_weights();
  auto params = model->named_parameters();
  struct Expect {
    const char* name;
    double last3[3];
    double sum;
  };
  const Expect expected[] = {
      {"transformer.wte.weight", {2.01871276, 1.10468745, 0.385570675}, 168.328492},
      {"lm_head.weight", {0.000244358816, 0.000269545271, -0.000159086834}, -0.178718666},
      {"transformer.h.0.attn.c_q.weight", {0.122835912, -0.0868220702, -0.0555975251}, 6.23046013},
      {"transformer.h.3.mlp.c_fc.weight", {-0.0286100302, 0.0635426268, 0.0350869112}, -2.26848463},
      {"value_embeds.3.weight", {-0.0829763934, -0.00380647252, -0.000308966322}, 6.1038473},
      {"transformer.h.3.attn.ve_gate.weight", {0.000806041935, 0.00188321352, 0.00921494979}, 0.229756208},
  };
  for (const auto& e : expected) {
    auto* p = params.find(e.name);
    ASSERT_NE(p, nullptr) << e.name;
    auto flat = p->detach().flatten().to(torch::kDouble);
    int64_t n = flat.numel();
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(flat[n - 3 + i].item<double>(), e.last3[i], 1e-7 * std::max(1.0, std::abs(e.last3[i]))) << e.name;
    EXPECT_NEAR(flat.sum().item<double>(), e.sum, 1e-5 * std::max(1.0, std::abs(e.sum))) << e.name;
  }
}

TEST(GptInit, StructureAndScalars) {
  torch::manual_seed(42);
  auto cfg = tiny();
  GPT model(cfg);
  model->init_weights();
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    auto& b = model->blocks[i];
    EXPECT_EQ(b->attn->c_proj->weight.abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(b->mlp->c_proj->weight.abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(static_cast<bool>(b->attn->ve_gate), has_ve(i, cfg.n_layer));
    double frac = double(i) / (cfg.n_layer - 1);
    EXPECT_FLOAT_EQ(model->resid_lambdas[i].item<float>(), float(1.15 - 0.10 * frac));
    EXPECT_FLOAT_EQ(model->x0_lambdas[i].item<float>(), float(0.20 - 0.15 * frac));
  }
  // Our deterministic choice for the three parameters Python leaves uninitialized.
  EXPECT_EQ(model->smear_gate->weight.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(model->smear_lambda.item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(model->backout_lambda.item<float>(), 0.2f);
  EXPECT_NEAR(model->wte->weight.std().item<float>(), 0.8, 0.02);
  EXPECT_EQ(model->rotary_cos.size(1), 10 * cfg.sequence_len);
  EXPECT_EQ(model->rotary_cos.size(3), cfg.n_embd / cfg.n_head / 2);
  // A fresh model trains: the loss is finite and close to ln(V) (tiny logits from lm_head std 0.001).
  auto idx = torch::randint(0, cfg.vocab_size, {2, 16}, torch::kLong);
  auto loss = model->forward(idx, idx);
  EXPECT_NEAR(loss.item<float>(), std::log(300.0), 0.05);
  loss.backward();
  EXPECT_GT(model->lm_head->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST(GptInit, RotarySignConvention) {
  // y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos on non-interleaved halves.
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 1, 4});
  auto c = torch::tensor({0.5f, 0.25f}).view({1, 1, 1, 2}), s = torch::tensor({0.1f, 0.2f}).view({1, 1, 1, 2});
  auto y = apply_rotary_emb(x, c, s).flatten();
  EXPECT_FLOAT_EQ(y[0].item<float>(), 1 * 0.5f + 3 * 0.1f);
  EXPECT_FLOAT_EQ(y[1].item<float>(), 2 * 0.25f + 4 * 0.2f);
  EXPECT_FLOAT_EQ(y[2].item<float>(), -1 * 0.1f + 3 * 0.5f);
  EXPECT_FLOAT_EQ(y[3].item<float>(), -2 * 0.2f + 4 * 0.25f);
}

// F.rms_norm's default eps, which Python's norm uses: fp32's epsilon, also for bf16 inputs (normalized in fp32);
// torch 2.11: F.rms_norm(torch.full((1, 4), 0.01, dtype=torch.bfloat16), (4,)) is 1.0 (bf16's 2^-7 would give 0.11).
TEST(GptInit, RmsNormEpsilonIsFRmsNormsDefault) {
  auto z = torch::zeros({1, 4});
  EXPECT_EQ(rms_norm(z).abs().sum().item<float>(), 0.0f);
  auto x = torch::full({1, 4}, 1e-4);
  float expected = 1e-4f / std::sqrt(1e-8f + 1.1920929e-07f);
  EXPECT_NEAR(rms_norm(x)[0][0].item<float>(), expected, 1e-5);
  auto xb = torch::full({1, 4}, 0.01, torch::kBFloat16);
  auto yb = rms_norm(xb);
  EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
  EXPECT_NEAR(yb[0][0].item<float>(), 0.01 / std::sqrt(1e-4 + 1.1920929e-07), 0.01);
}

TEST(GptGenerate, GreedyFollowsArgmaxAndSamplingIsSeeded) {
  torch::manual_seed(42);
  GPT model(tiny());
  model->init_weights();
  {
    torch::NoGradGuard g;
    for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * 0.3);
  }
  std::vector<int64_t> prompt = {1, 5, 7, 11};
  auto greedy = model->generate(prompt, 5, /*temperature=*/0.0);
  ASSERT_EQ(greedy.size(), 5u);
  std::vector<int64_t> ids = prompt;
  for (int i = 0; i < 5; ++i) {
    torch::NoGradGuard g;
    auto logits = model->forward(torch::tensor(ids, torch::kLong).unsqueeze(0));
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    EXPECT_EQ(greedy[i], next);
    ids.push_back(next);
  }
  auto a = model->generate(prompt, 6, 1.0, 50, 7), b = model->generate(prompt, 6, 1.0, 50, 7);
  EXPECT_EQ(a, b);
  for (auto t : a) EXPECT_TRUE(t >= 0 && t < 300);
}

// bf16 compute (what CUDA and bf16-capable CPUs use; the whole model's dtype is fixed per process by
// NANOCHAT_DTYPE, so the pieces are checked here): the casting Linear, the fused loss and the attention run in
// bf16, stay close to fp32, and gradients reach the fp32 master weight.
TEST(GptBf16, BuildingBlocksCloseToFp32) {
  torch::manual_seed(42);
  CastLinear lin(32, 48);
  {
    torch::NoGradGuard g;
    lin->weight.normal_(0, 0.2);
  }
  auto x = torch::randn({64, 32});
  auto y16 = lin(x.to(torch::kBFloat16));
  EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
  EXPECT_LT((y16.to(torch::kFloat) - lin(x)).abs().max().item<float>(), 0.05);
  auto targets = torch::randint(0, 40, {64}, torch::kLong);
  auto loss16 = fused_linear_softcap_ce(x.to(torch::kBFloat16), lin->weight.to(torch::kBFloat16), 40, targets, 15.0);
  auto loss32 = fused_linear_softcap_ce(x, lin->weight, 40, targets, 15.0);
  EXPECT_NEAR(loss16.item<float>(), loss32.item<float>(), 0.02);
  loss16.backward();
  ASSERT_TRUE(lin->weight.grad().defined());
  EXPECT_EQ(lin->weight.grad().scalar_type(), torch::kFloat);
  EXPECT_EQ(rms_norm(x.to(torch::kBFloat16)).scalar_type(), torch::kBFloat16);
}
