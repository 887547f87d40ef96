// Tests for nanochat/optim: setup_optimizer's groups and MuonAdamW steps against the Python reference
// (tests/fixtures/gpt_tiny: model.pt, expected_grads.pt -> params_after_step1.pt, then with the GPT's own
// backward -> params_after_step2.pt; meta.json's groups), the dtype quirks of the Muon update, the state_dict
// layout, its round trip through a .pt file, and loading the optimizer state Python nanochat saved.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/gpt.h"
#include "nanochat/optim.h"
#include "nanochat/formats/pt_file.h"

using namespace nanochat;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

namespace {

const std::string kTiny = std::string(NANOCHAT_FIXTURES) + "/gpt_tiny/";

// A fixture state dict in file order (the model's named_parameters order).
Named load_plain_dict(const std::string& path) { return nanochat::load_state_dict(path); }

std::map<std::string, torch::Tensor> as_map(const Named& v) { return {v.begin(), v.end()}; }

// Fresh leaf parameters (requires_grad) with the fixture's values.
Named make_params(const Named& sd) {
  Named out;
  for (const auto& [k, v] : sd) out.emplace_back(k, v.clone().set_requires_grad(true));
  return out;
}

void set_grads(const Named& params, const std::map<std::string, torch::Tensor>& grads) {
  for (const auto& [k, p] : params) p.mutable_grad() = grads.at(k).clone();
}

nlohmann::json tiny_meta() { return nlohmann::json::parse(read_file(kTiny + "meta.json")); }

MuonAdamW tiny_optimizer(const Named& params) {
  const int64_t n_embd = tiny_meta()["config"]["n_embd"].get<int64_t>();
  return setup_optimizer(params, n_embd, /*unembedding_lr=*/0.004, /*embedding_lr=*/0.2, /*matrix_lr=*/0.02,
                         /*weight_decay=*/0.1, /*scalar_lr=*/0.5);
}

}  // namespace

TEST(Optim, SetupOptimizerGroupsMatchReference) {
  Named params = make_params(load_plain_dict(kTiny + "model.pt"));
  MuonAdamW opt = tiny_optimizer(params);
  const nlohmann::json meta = tiny_meta();
  const auto& expected = meta["optimizer_groups"];
  const auto& groups = opt.param_groups();
  ASSERT_EQ(groups.size(), expected.size());
  std::map<std::string, size_t> model_order;
  for (size_t i = 0; i < params.size(); i++) model_order[params[i].first] = i;
  for (size_t i = 0; i < groups.size(); i++) {
    SCOPED_TRACE("group " + std::to_string(i));
    const auto& e = expected[i];
    const ParamGroup& g = groups[i];
    EXPECT_EQ(group_kind_name(g.kind), e["kind"].get<std::string>());
    EXPECT_EQ(g.lr, e["lr"].get<double>());
    EXPECT_EQ(g.initial_lr, e["initial_lr"].get<double>());
    EXPECT_EQ(g.weight_decay, e["weight_decay"].get<double>());
    if (g.kind == GroupKind::adamw) {
      EXPECT_EQ(g.betas.first, e["betas"][0].get<double>());
      EXPECT_EQ(g.betas.second, e["betas"][1].get<double>());
      EXPECT_EQ(g.eps, e["eps"].get<double>());
    } else {
      EXPECT_EQ(g.momentum, e["momentum"].get<double>());
      EXPECT_EQ(g.ns_steps, e["ns_steps"].get<int64_t>());
      EXPECT_EQ(g.beta2, e["beta2"].get<double>());
    }
    // meta.json lists each group's names in model order; the group itself keeps the reference's order
    // (which differs only in the smear group, checked below)
    std::vector<std::string> names = g.names;
    std::sort(names.begin(), names.end(), [&](auto& a, auto& b) { return model_order[a] < model_order[b]; });
    EXPECT_EQ(names, e["params"].get<std::vector<std::string>>());
    ASSERT_EQ(g.params.size(), g.names.size());
    for (size_t j = 0; j < g.params.size(); j++)
      EXPECT_TRUE(g.params[j].is_same(params[model_order[g.names[j]]].second)) << g.names[j];
  }
  EXPECT_EQ(groups[5].names, (std::vector<std::string>{"smear_gate.weight", "smear_lambda", "backout_lambda"}));
}

TEST(Optim, SetupOptimizerRejectsUnknownParameter) {
  Named params = {{"transformer.wte.weight", torch::zeros({8, 4})}, {"mystery", torch::zeros({3})}};
  EXPECT_THROW(setup_optimizer(params, 4), Error);
}

TEST(Optim, StepOneMatchesReference) {
  const auto before = as_map(load_plain_dict(kTiny + "model.pt"));
  Named params = make_params(load_plain_dict(kTiny + "model.pt"));
  set_grads(params, as_map(load_plain_dict(kTiny + "expected_grads.pt")));
  MuonAdamW opt = tiny_optimizer(params);
  opt.step();
  auto after = as_map(load_plain_dict(kTiny + "params_after_step1.pt"));
  std::map<std::string, GroupKind> kind_of;
  for (const auto& g : opt.param_groups())
    for (const auto& n : g.names) kind_of[n] = g.kind;
  ASSERT_EQ(kind_of.size(), params.size());
  double worst[2] = {0, 0};
  for (const auto& [name, p] : params) {
    const bool adamw = kind_of[name] == GroupKind::adamw;
    const double diff = (p.detach() - after.at(name)).abs().max().item<double>();
    EXPECT_LE(diff, adamw ? 1e-5 : 2e-3) << name;
    worst[adamw ? 0 : 1] = std::max(worst[adamw ? 0 : 1], diff);
    // the reference step moved every parameter, so matching it is not trivial
    EXPECT_FALSE(torch::equal(after.at(name), before.at(name))) << name;
  }
  std::cout << "max |ours - reference| after step 1: AdamW " << worst[0] << ", Muon " << worst[1] << "\n";
}

TEST(Optim, StateDictLayoutAndRoundTrip) {
  Named sd = load_plain_dict(kTiny + "model.pt");
  auto grads = as_map(load_plain_dict(kTiny + "expected_grads.pt"));
  Named a = make_params(sd);
  set_grads(a, grads);
  MuonAdamW opt_a = tiny_optimizer(a);
  opt_a.step();

  // layout: ids in group order; AdamW state on every param, Muon state on each group's first only
  c10::IValue iv = opt_a.state_dict();
  auto top = iv.toGenericDict();
  auto state = top.at("state").toGenericDict();
  auto groups = top.at("param_groups").toList();
  ASSERT_EQ(groups.size(), opt_a.param_groups().size());
  int64_t next_id = 0;
  size_t expected_states = 0;
  for (size_t gi = 0; gi < groups.size(); gi++) {
    auto g = groups.get(gi).toGenericDict();
    const ParamGroup& ours = opt_a.param_groups()[gi];
    EXPECT_EQ(g.at("kind").toStringRef(), group_kind_name(ours.kind));
    EXPECT_EQ(g.at("lr").toDouble(), ours.lr);
    EXPECT_EQ(g.at("initial_lr").toDouble(), ours.initial_lr);
    auto ids = g.at("params").toList();
    ASSERT_EQ(ids.size(), ours.params.size());
    for (size_t j = 0; j < ids.size(); j++) EXPECT_EQ(ids.get(j).toInt(), next_id + static_cast<int64_t>(j));
    if (ours.kind == GroupKind::adamw) {
      EXPECT_TRUE(g.at("betas").isTuple());
      for (size_t j = 0; j < ids.size(); j++) {
        auto s = state.at(next_id + static_cast<int64_t>(j)).toGenericDict();
        EXPECT_EQ(s.at("step").toInt(), 1);
        EXPECT_EQ(s.at("exp_avg").toTensor().sizes(), ours.params[j].sizes());
      }
      expected_states += ids.size();
    } else {
      EXPECT_EQ(g.at("ns_steps").toInt(), 5);
      auto s = state.at(next_id).toGenericDict();
      const int64_t K = static_cast<int64_t>(ids.size());
      EXPECT_EQ(s.at("momentum_buffer").toTensor().size(0), K);
      auto smb = s.at("second_momentum_buffer").toTensor();
      const auto shape = ours.params[0].sizes();
      if (shape[0] >= shape[1])
        EXPECT_EQ(smb.sizes().vec(), (std::vector<int64_t>{K, shape[0], 1}));
      else
        EXPECT_EQ(smb.sizes().vec(), (std::vector<int64_t>{K, 1, shape[1]}));
      expected_states += 1;
    }
    next_id += static_cast<int64_t>(ids.size());
  }
  EXPECT_EQ(state.size(), expected_states);

  // round trip through pickle bytes into a fresh optimizer over a copy of the stepped parameters
  std::vector<char> bytes = torch::pickle_save(iv);
  c10::IValue back = torch::pickle_load(bytes);
  Named b;
  for (const auto& [k, p] : a) b.emplace_back(k, p.detach().clone().set_requires_grad(true));
  MuonAdamW opt_b = tiny_optimizer(b);
  for (auto& g : opt_b.param_groups()) g.lr = 123.0;  // replaced by the saved values
  opt_b.load_state_dict(back);
  for (size_t gi = 0; gi < opt_b.param_groups().size(); gi++)
    EXPECT_EQ(opt_b.param_groups()[gi].lr, opt_a.param_groups()[gi].lr);

  // a second step from the restored state equals the second step of the original, bit for bit
  set_grads(a, grads);
  set_grads(b, grads);
  for (auto* opt : {&opt_a, &opt_b})
    for (auto& g : opt->param_groups()) {
      g.lr *= 0.5;
      if (g.kind == GroupKind::muon) g.momentum = 0.9, g.weight_decay = 0.05;
    }
  opt_a.step();
  opt_b.step();
  for (size_t i = 0; i < a.size(); i++) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  EXPECT_EQ(opt_b.state()[0].step, 2);
}

TEST(Optim, LoadStateDictRejectsMismatch) {
  Named a = make_params(load_plain_dict(kTiny + "model.pt"));
  MuonAdamW opt = tiny_optimizer(a);
  EXPECT_THROW(opt.load_state_dict(c10::IValue(int64_t(3))), Error);
  // a state for fewer groups (e.g. another model) is refused and leaves the optimizer untouched
  std::vector<ParamGroup> fewer(opt.param_groups().begin(), opt.param_groups().begin() + 2);
  MuonAdamW small(fewer);
  const double lr0 = opt.param_groups()[0].lr;
  EXPECT_THROW(opt.load_state_dict(small.state_dict()), Error);
  EXPECT_EQ(opt.param_groups()[0].lr, lr0);
}

TEST(Optim, AdamWStepMatchesFormula) {
  // one parameter, two steps, against the update written out in double (fp32 rounding stays within 1e-6)
  torch::Tensor p = torch::tensor({0.5, -1.0, 2.0}, torch::kFloat32).set_requires_grad(true);
  ParamGroup g;
  g.kind = GroupKind::adamw;
  g.params = {p};
  g.names = {"p"};
  g.lr = g.initial_lr = 0.1;
  g.betas = {0.8, 0.95};
  g.eps = 1e-10;
  g.weight_decay = 0.05;
  MuonAdamW opt({g});
  std::vector<double> pv{0.5, -1.0, 2.0}, m(3, 0.0), v(3, 0.0);
  const std::vector<std::vector<double>> grads{{0.3, -0.2, 0.0}, {-0.1, 0.4, 1.0}};
  for (int step = 1; step <= 2; step++) {
    p.mutable_grad() = torch::tensor(grads[step - 1], torch::kFloat32);
    opt.step();
    for (int i = 0; i < 3; i++) {
      const double gr = grads[step - 1][i];
      pv[i] *= 1 - 0.1 * 0.05;
      m[i] += (1 - 0.8) * (gr - m[i]);
      v[i] += (1 - 0.95) * (gr * gr - v[i]);
      const double bc1 = 1 - std::pow(0.8, step), bc2 = 1 - std::pow(0.95, step);
      pv[i] -= (0.1 / bc1) * m[i] / (std::sqrt(v[i] / bc2) + 1e-10);
      EXPECT_NEAR(p[i].item<double>(), pv[i], 1e-6) << "step " << step << " i " << i;
    }
  }
  EXPECT_EQ(opt.state()[0].step, 2);
  EXPECT_EQ(opt.state()[0].exp_avg.scalar_type(), torch::kFloat32);
}

TEST(Optim, MuonZeroGradientIsCautiousDecayWithBf16Hyperparameters) {
  // With a zero gradient the orthogonalized update is 0, so every weight passes the cautious mask and the step
  // is p -= bf16(lr_eff)·bf16(wd)·p, with lr_eff = lr·sqrt(rows/cols) for tall matrices.
  torch::Tensor tall = torch::randn({8, 2}).set_requires_grad(true);
  torch::Tensor wide = torch::randn({2, 8}).set_requires_grad(true);
  const torch::Tensor tall0 = tall.detach().clone(), wide0 = wide.detach().clone();
  auto group = [](torch::Tensor p) {
    ParamGroup g;
    g.kind = GroupKind::muon;
    g.params = {p};
    g.lr = g.initial_lr = 0.02;
    g.weight_decay = 0.1;
    return g;
  };
  MuonAdamW opt({group(tall), group(wide)});
  tall.mutable_grad() = torch::zeros_like(tall);
  wide.mutable_grad() = torch::zeros_like(wide);
  opt.step();
  auto bf16 = [](double x) { return torch::tensor(x, torch::kFloat32).to(torch::kBFloat16); };
  const float decay_tall = (bf16(0.02 * 2.0) * bf16(0.1)).item<float>();  // sqrt(8/2) = 2
  const float decay_wide = (bf16(0.02) * bf16(0.1)).item<float>();
  EXPECT_NE(decay_tall, static_cast<float>(0.04 * 0.1));  // the bf16 rounding is visible
  EXPECT_TRUE(torch::equal(tall.detach(), tall0 - tall0 * decay_tall));
  EXPECT_TRUE(torch::equal(wide.detach(), wide0 - wide0 * decay_wide));
  // factored second moment: per row for tall, per column for wide
  EXPECT_EQ(opt.state()[0].second_momentum_buffer.sizes().vec(), (std::vector<int64_t>{1, 8, 1}));
  EXPECT_EQ(opt.state()[1].second_momentum_buffer.sizes().vec(), (std::vector<int64_t>{1, 1, 8}));
}

TEST(Optim, PolarExpressApproximatelyOrthogonalizes) {
  torch::manual_seed(0);
  for (auto shape : {std::vector<int64_t>{3, 64, 16}, std::vector<int64_t>{3, 16, 64}}) {
    torch::Tensor G = torch::randn(shape);
    torch::Tensor X = polar_express(G.to(torch::kBFloat16), 5).to(torch::kFloat32);
    EXPECT_EQ(X.sizes(), G.sizes());
    // singular values land near 1 (Polar Express leaves them roughly in [0.7, 1.2])
    torch::Tensor s = torch::linalg_svdvals(X);
    EXPECT_GT(s.min().item<double>(), 0.5);
    EXPECT_LT(s.max().item<double>(), 1.3);
    // and the singular vectors are G's: X·Gᵀ (or Gᵀ·X) is symmetric positive
    torch::Tensor S =
        shape[1] > shape[2] ? torch::matmul(G.transpose(-2, -1), X) : torch::matmul(X, G.transpose(-2, -1));
    EXPECT_LT((S - S.transpose(-2, -1)).abs().max().item<double>(), 0.05 * S.abs().max().item<double>());
  }
}

TEST(Optim, ZeroGradDropsGradients) {
  Named params = make_params(load_plain_dict(kTiny + "model.pt"));
  set_grads(params, as_map(load_plain_dict(kTiny + "expected_grads.pt")));
  MuonAdamW opt = tiny_optimizer(params);
  opt.zero_grad();
  for (const auto& [k, p] : params) EXPECT_FALSE(p.grad().defined()) << k;
}

namespace {
// The parameters of the Python-written d2 checkpoint (n_embd 64, 2 layers, 2 heads, vocab 1033 padded to 1088),
// named and ordered as the model's state dict.
Named d2_params() {
  Named p;
  auto add = [&](const std::string& n, std::vector<int64_t> shape) { p.emplace_back(n, torch::zeros(shape)); };
  add("resid_lambdas", {2});
  add("x0_lambdas", {2});
  add("smear_lambda", {1});
  add("backout_lambda", {1});
  add("transformer.wte.weight", {1088, 64});
  for (int i = 0; i < 2; i++) {
    const std::string h = "transformer.h." + std::to_string(i) + ".";
    for (const char* m : {"attn.c_q", "attn.c_k", "attn.c_v", "attn.c_proj"}) add(h + m + ".weight", {64, 64});
    if (i == 1) add(h + "attn.ve_gate.weight", {2, 12});
    add(h + "mlp.c_fc.weight", {256, 64});
    add(h + "mlp.c_proj.weight", {64, 256});
  }
  add("lm_head.weight", {1088, 64});
  add("smear_gate.weight", {1, 24});
  add("value_embeds.1.weight", {1088, 64});
  return p;
}
}  // namespace

TEST(Optim, LoadsPythonWrittenOptimizerState) {
  const std::string path = std::string(NANOCHAT_FIXTURES) + "/python_basedir/base_checkpoints/d2/optim_000003_rank0.pt";
  c10::IValue saved = load_pt(path);
  Named params = d2_params();
  MuonAdamW opt = setup_optimizer(params, 64);              // Python saved it with weight_decay 0 for Muon
  for (auto& g : opt.param_groups()) g.weight_decay = 7.0;  // overwritten by the load
  opt.load_state_dict(saved);

  const auto& groups = opt.param_groups();
  ASSERT_EQ(groups.size(), 10u);
  EXPECT_EQ(groups[0].lr, 0.004 * std::pow(64.0 / 768.0, -0.5));
  EXPECT_EQ(groups[4].betas, std::make_pair(0.96, 0.95));
  EXPECT_EQ(groups[5].weight_decay, 0.0);
  EXPECT_EQ(groups[6].weight_decay, 0.0);
  EXPECT_EQ(groups[6].ns_steps, 5);
  EXPECT_EQ(groups[6].beta2, 0.9);
  EXPECT_EQ(groups[9].initial_lr, 0.02);

  // every tensor matches the file's, on the right parameter id
  auto state = saved.toGenericDict().at("state").toGenericDict();
  size_t n_tensors = 0;
  for (const auto& e : state) {
    const auto& st = opt.state()[e.key().toInt()];
    for (const auto& kv : e.value().toGenericDict()) {
      const std::string& k = kv.key().toStringRef();
      if (k == "step") {
        EXPECT_EQ(st.step, 3);
        continue;
      }
      const torch::Tensor& ours = k == "exp_avg"           ? st.exp_avg
                                  : k == "exp_avg_sq"      ? st.exp_avg_sq
                                  : k == "momentum_buffer" ? st.momentum_buffer
                                                           : st.second_momentum_buffer;
      EXPECT_TRUE(torch::equal(ours, kv.value().toTensor())) << e.key().toInt() << " " << k;
      n_tensors++;
    }
  }
  EXPECT_EQ(n_tensors, 8u * 2 + 4u * 2);
  // the smear group's first id (5) is the [1, 24] gate
  EXPECT_EQ(opt.state()[5].exp_avg.sizes().vec(), (std::vector<int64_t>{1, 24}));

  // it steps on from there: AdamW steps count on, Muon buffers keep their shapes
  for (auto& [n, p] : params) p.mutable_grad() = torch::randn_like(p);
  opt.step();
  EXPECT_EQ(opt.state()[0].step, 4);
  EXPECT_EQ(opt.state()[9].momentum_buffer.sizes().vec(), (std::vector<int64_t>{8, 64, 64}));

  // and what we write back (through the checkpoint file format) has the same structure as what Python wrote
  const auto tmp = std::filesystem::temp_directory_path() / ("optim_test_" + std::to_string(::getpid()) + ".pt");
  save_pt(tmp, opt.state_dict());
  c10::IValue ours = load_pt(tmp);
  std::filesystem::remove(tmp);
  auto ours_groups = ours.toGenericDict().at("param_groups").toList();
  auto saved_groups = saved.toGenericDict().at("param_groups").toList();
  for (size_t i = 0; i < saved_groups.size(); i++) {
    std::vector<std::string> keys_saved, keys_ours;
    for (const auto& kv : saved_groups.get(i).toGenericDict()) keys_saved.push_back(kv.key().toStringRef());
    for (const auto& kv : ours_groups.get(i).toGenericDict()) keys_ours.push_back(kv.key().toStringRef());
    EXPECT_EQ(keys_ours, keys_saved) << "group " << i;
  }
  EXPECT_EQ(ours.toGenericDict().at("state").toGenericDict().size(), state.size());
}

TEST(Optim, ProtocolStepTwoWithModelMatchesReference) {
  // The full fixture protocol: step 1 from the saved gradients, then a fresh forward/backward of the model on
  // the same batch, halved lrs, Muon momentum 0.9 and weight decay 0.05, step 2.
  // Step 2 starts from the reference's own step-1 weights (params_after_step1.pt), with the optimizer state our
  // step 1 left. Otherwise step 1's bfloat16 Polar Express, whose rounding differs by CPU (AVX2, AVX-512, AMX),
  // would move the Muon weights, hence every step-2 gradient, and Adam's m/sqrt(v) amplifies such differences on
  // entries whose gradient is nearly zero (0.02 on smear_gate.weight on one Intel CPU). From the same weights the
  // gradients agree with Python's to fp32 summation order, which Adam still amplifies a little there (1.6e-5 on
  // value_embeds.1.weight on an AMD EPYC), so AdamW parameters get 1e-4 (an update is up to lr ≈ 0.17); Muon's step
  // keeps its bfloat16 bound. A wrong update rule (bias correction, betas, decay) moves parameters far more.
  const nlohmann::json meta = tiny_meta();
  GPT model(config_from_json(meta["config"]));
  model->load_state_dict(load_plain_dict(kTiny + "model.pt"));
  Named params = model->state_dict();
  for (auto& [k, p] : params) ASSERT_TRUE(p.requires_grad()) << k;
  set_grads(params, as_map(load_plain_dict(kTiny + "expected_grads.pt")));
  MuonAdamW opt = tiny_optimizer(params);
  opt.step();
  opt.zero_grad();
  auto after1 = as_map(load_plain_dict(kTiny + "params_after_step1.pt"));
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : params) p.copy_(after1.at(name));
  }
  auto inputs = as_map(load_plain_dict(kTiny + "inputs.pt"));
  torch::Tensor loss = model->forward(inputs.at("idx"), inputs.at("targets"));
  EXPECT_NEAR(loss.item<double>(), meta["loss_after_step1"].get<double>(), 1e-4);
  loss.backward();
  for (auto& g : opt.param_groups()) {
    g.lr *= 0.5;
    if (g.kind == GroupKind::muon) g.momentum = 0.9, g.weight_decay = 0.05;
  }
  opt.step();
  auto after = as_map(load_plain_dict(kTiny + "params_after_step2.pt"));
  std::map<std::string, GroupKind> kind_of;
  for (const auto& g : opt.param_groups())
    for (const auto& n : g.names) kind_of[n] = g.kind;
  double worst[2] = {0, 0};
  for (const auto& [name, p] : params) {
    const bool adamw = kind_of.at(name) == GroupKind::adamw;
    const double diff = (p.detach() - after.at(name)).abs().max().item<double>();
    EXPECT_LE(diff, adamw ? 1e-4 : 2e-3) << name;
    worst[adamw ? 0 : 1] = std::max(worst[adamw ? 0 : 1], diff);
    EXPECT_FALSE(torch::equal(after.at(name), after1.at(name))) << name;
  }
  std::cout << "max |ours - reference| after step 2: AdamW " << worst[0] << ", Muon " << worst[1] << "\n";
}
