// GPT parity with the Python reference on tests/fixtures/gpt_tiny (4 layers, d=64, 4 query / 2 kv heads,
// vocab 300 padded to 320, seq 512, SSSL): logits, mean and per-position loss, every parameter's gradient,
// padded vocab, window sizes, FLOPs/token and parameter counts. Also: a KV-cache prefill + decode gives the
// same last-position logits as a full forward.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nanochat/common.h"
#include "nanochat/gpt.h"
#include "nanochat/kv_cache.h"

using namespace nanochat;

namespace {

const std::string kDir = std::string(NANOCHAT_FIXTURES) + "/gpt_tiny/";

// The fixtures are plain dicts of tensors written by Python's torch.save.
std::vector<std::pair<std::string, torch::Tensor>> load_tensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto dict = torch::pickle_load(bytes).toGenericDict();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : dict) out.emplace_back(kv.key().toStringRef(), kv.value().toTensor());
  return out;
}

std::map<std::string, torch::Tensor> as_map(const std::vector<std::pair<std::string, torch::Tensor>>& v) {
  return {v.begin(), v.end()};
}

nlohmann::json meta() {
  std::ifstream f(kDir + "meta.json");
  return nlohmann::json::parse(f);
}

GPT load_tiny() {
  GPT model(config_from_json(meta()["config"]));
  model->load_state_dict(load_tensors(kDir + "model.pt"), true);
  return model;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST(GptParity, ConfigFactsMatchMeta) {
  auto m = meta();
  auto cfg = config_from_json(m["config"]);
  GPT model(cfg);
  EXPECT_EQ(model->padded_vocab, m["padded_vocab_size"].get<int64_t>());
  auto ws = m["window_sizes"];
  ASSERT_EQ(model->window_sizes.size(), ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    EXPECT_EQ(model->window_sizes[i].first, ws[i][0].get<int64_t>());
    EXPECT_EQ(model->window_sizes[i].second, ws[i][1].get<int64_t>());
  }
  EXPECT_EQ(model->estimate_flops(), m["estimate_flops"].get<int64_t>());
  EXPECT_EQ(estimate_flops(cfg), m["estimate_flops"].get<int64_t>());
  auto n = m["num_scaling_params"];
  for (auto counts : {model->num_scaling_params(), count_params(cfg)}) {
    EXPECT_EQ(counts.wte, n["wte"].get<int64_t>());
    EXPECT_EQ(counts.value_embeds, n["value_embeds"].get<int64_t>());
    EXPECT_EQ(counts.lm_head, n["lm_head"].get<int64_t>());
    EXPECT_EQ(counts.transformer_matrices, n["transformer_matrices"].get<int64_t>());
    EXPECT_EQ(counts.scalars, n["scalars"].get<int64_t>());
    EXPECT_EQ(counts.total, n["total"].get<int64_t>());
  }
}

TEST(GptParity, ParameterNamesAndOrderEqualPython) {
  auto model = load_tiny();
  auto ours = model->state_dict();
  auto theirs = load_tensors(kDir + "model.pt");  // Python's state_dict order, preserved by the plain dict
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].first, theirs[i].first) << "position " << i;
    EXPECT_TRUE(ours[i].second.equal(theirs[i].second)) << ours[i].first;
  }
  // The optimizer groups in meta.json list every parameter exactly once.
  size_t listed = 0;
  auto m = meta();
  for (const auto& g : m["optimizer_groups"]) listed += g["params"].size();
  EXPECT_EQ(listed, ours.size());
}

TEST(GptParity, ForwardLogitsAndLosses) {
  auto model = load_tiny();
  auto inputs = as_map(load_tensors(kDir + "inputs.pt"));
  auto expected = as_map(load_tensors(kDir + "expected_forward.pt"));
  torch::NoGradGuard no_grad;
  auto logits = model->forward(inputs["idx"]);
  ASSERT_EQ(logits.sizes(), expected["logits"].sizes());
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  EXPECT_LT(max_abs_diff(logits, expected["logits"]), 1e-5);
  auto loss = model->forward(inputs["idx"], inputs["targets"]);
  EXPECT_LT(max_abs_diff(loss, expected["loss"]), 1e-5);
  EXPECT_NEAR(loss.item<double>(), meta()["loss"].get<double>(), 1e-5);
  auto loss_none = model->forward(inputs["idx"], inputs["targets"], nullptr, "none");
  ASSERT_EQ(loss_none.sizes(), expected["loss_none"].sizes());
  EXPECT_LT(max_abs_diff(loss_none, expected["loss_none"]), 1e-5);
  // Ignored targets contribute exactly zero.
  auto ignored = inputs["targets"].reshape({-1}) == -1;
  ASSERT_GT(ignored.sum().item<int64_t>(), 0);
  EXPECT_EQ(loss_none.masked_select(ignored).abs().max().item<float>(), 0.0f);
}

// Both loss paths: the fused chunked lm_head + softcap + cross-entropy (the default) and the plain one.
class GptGradients : public ::testing::TestWithParam<bool> {};

TEST_P(GptGradients, EveryParameterMatchesPython) {
  auto model = load_tiny();
  model->fused_loss = GetParam();
  auto inputs = as_map(load_tensors(kDir + "inputs.pt"));
  auto expected = load_tensors(kDir + "expected_grads.pt");
  auto loss = model->forward(inputs["idx"], inputs["targets"]);
  EXPECT_NEAR(loss.item<double>(), meta()["loss"].get<double>(), 1e-5);
  loss.backward();
  auto params = model->named_parameters();
  ASSERT_EQ(expected.size(), params.size());
  for (const auto& [name, g_ref] : expected) {
    auto* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_TRUE(p->grad().defined()) << name;
    auto g = p->grad();
    ASSERT_EQ(g.sizes(), g_ref.sizes()) << name;
    // 1e-5 absolute, or 1e-4 relative for large gradients.
    auto tol = torch::clamp_min(g_ref.abs().to(torch::kDouble) * 1e-4, 1e-5);
    auto err = (g.to(torch::kDouble) - g_ref.to(torch::kDouble)).abs();
    EXPECT_TRUE((err <= tol).all().item<bool>()) << name << " max abs err " << err.max().item<double>();
  }
}
INSTANTIATE_TEST_SUITE_P(LossPath, GptGradients, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Fused" : "Plain"; });

TEST(GptParity, LoadRejectsMismatchedCheckpoints) {
  auto tensors = load_tensors(kDir + "model.pt");
  GPT model(config_from_json(meta()["config"]));
  auto missing = tensors;
  missing.pop_back();
  EXPECT_THROW(model->load_state_dict(missing, true), nanochat::Error);
  model->load_state_dict(missing, false);  // non-strict: fine
  auto extra = tensors;
  extra.emplace_back("transformer.h.9.attn.c_q.weight", torch::zeros({64, 64}));
  EXPECT_THROW(model->load_state_dict(extra, true), nanochat::Error);
  auto wrong = tensors;
  wrong[0].second = torch::zeros({5});
  EXPECT_THROW(model->load_state_dict(wrong, true), nanochat::Error);
}

TEST(GptParity, LoadAdoptsCheckpointDtypes) {
  auto tensors = load_tensors(kDir + "model.pt");
  for (auto& [name, t] : tensors)
    if (name == "transformer.wte.weight") t = t.to(torch::kBFloat16);
  GPT model(config_from_json(meta()["config"]));
  model->load_state_dict(tensors, true);
  EXPECT_EQ(model->wte->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->lm_head->weight.scalar_type(), torch::kFloat);
}

// Last-position logits through the KV cache (prefill of 56 tokens, then 8 single-token decodes) equal the full
// forward over all T = 64 tokens. sequence_len = 32 makes the long window (32) bite at T = 64; the short
// window of a real config is never below 128, so for "SSSL" the short layers get a window of 9 to make it bite too.
static void kv_cache_matches_full_forward(const std::string& pattern) {
  torch::manual_seed(42);
  GPTConfig cfg;
  cfg.sequence_len = 32;
  cfg.vocab_size = 300;
  cfg.n_layer = 4;
  cfg.n_head = 4;
  cfg.n_kv_head = 2;
  cfg.n_embd = 64;
  cfg.window_pattern = pattern;
  GPT model(cfg);
  model->init_weights();
  {
    // Random non-trivial values everywhere (zero-init projections would hide attention bugs).
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * 0.3);
    for (auto& w : model->window_sizes)
      if (w.first != cfg.sequence_len) w.first = 9;
    EXPECT_EQ(model->window_sizes.back().first, 32);
  }
  torch::NoGradGuard no_grad;
  const int64_t T = 64, prefill = 56;
  auto idx = torch::randint(0, 300, {2, T}, torch::kLong);
  auto full = model->forward(idx);  // [2, T, V]
  KVCache cache(2, cfg.n_kv_head, T, cfg.n_embd / cfg.n_head, cfg.n_layer, torch::kCPU, torch::kFloat);
  auto logits = model->forward(idx.narrow(1, 0, prefill), {}, &cache);
  EXPECT_EQ(cache.get_pos(), prefill);
  EXPECT_LT(max_abs_diff(logits, full.narrow(1, 0, prefill)), 1e-4);
  for (int64_t t = prefill; t < T; ++t) {
    logits = model->forward(idx.narrow(1, t, 1), {}, &cache);
    EXPECT_LT(max_abs_diff(logits.select(1, 0), full.select(1, t)), 1e-4) << "position " << t;
  }
  EXPECT_EQ(cache.get_pos(), T);

  // A batch-1 prefill cloned into 2 rows (Engine's pattern) decodes like the batch-2 cache.
  KVCache one(1, cfg.n_kv_head, T, cfg.n_embd / cfg.n_head, cfg.n_layer, torch::kCPU, torch::kFloat);
  auto row0 = idx.narrow(0, 0, 1);
  model->forward(row0.narrow(1, 0, prefill), {}, &one);
  KVCache two(2, cfg.n_kv_head, T, cfg.n_embd / cfg.n_head, cfg.n_layer, torch::kCPU, torch::kFloat);
  two.prefill(one);
  EXPECT_EQ(two.get_pos(), prefill);
  auto next = row0.narrow(1, prefill, 1).expand({2, 1}).contiguous();
  auto l2 = model->forward(next, {}, &two);
  EXPECT_LT(max_abs_diff(l2.select(0, 0), full.select(0, 0).narrow(0, prefill, 1)), 1e-4);
  EXPECT_LT(max_abs_diff(l2.select(0, 1), full.select(0, 0).narrow(0, prefill, 1)), 1e-4);
}

TEST(GptKVCache, DecodeEqualsFullForwardPatternL) { kv_cache_matches_full_forward("L"); }
TEST(GptKVCache, DecodeEqualsFullForwardPatternSSSL) { kv_cache_matches_full_forward("SSSL"); }

// The fused loss also on the all-targets-valid fast path and with several row chunks (V = 9000 -> 466 rows per
// chunk, N = 1100 rows): loss and gradients equal the plain path.
TEST(GptFusedLoss, EqualsPlainPathAllValidManyChunks) {
  torch::manual_seed(3);
  auto x = torch::randn({1100, 32}, torch::requires_grad());
  auto w = (torch::randn({9024, 32}) * 0.5).requires_grad_();
  auto targets = torch::randint(0, 9000, {1100}, torch::kLong);
  auto fused = fused_linear_softcap_ce(x, w, 9000, targets, 15.0);
  auto gf = torch::autograd::grad({fused}, {x, w});
  auto logits = torch::linear(x, w).narrow(-1, 0, 9000);
  auto plain = torch::nn::functional::cross_entropy(15.0 * torch::tanh(logits / 15.0), targets);
  auto gp = torch::autograd::grad({plain}, {x, w});
  EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5);
  EXPECT_LT(max_abs_diff(gf[0], gp[0]), 1e-6);
  EXPECT_LT(max_abs_diff(gf[1], gp[1]), 1e-6);
  EXPECT_EQ(gf[1].narrow(0, 9000, 24).abs().sum().item<float>(), 0.0f);  // padding rows get no gradient
}
