// Tests for nanochat/optim_dist: the distributed (ZeRO-2) MuonAdamW against the single-process one. Each test
// runs 2 or 3 ranks as threads of this process, each with its own Gloo process group over one in-memory store,
// on a tiny GPT's real parameter groups (AdamW under and over 1024 elements, Muon groups whose size the world
// size does not divide, a rank that owns no Muon matrix). Proves: same parameters as one process (identical
// gradients on every rank, and different gradients whose average is the one-process gradient), every rank ends
// with the same parameters, the state is sharded in Python's layout, a saved shard resumes bit-identically, and a
// state saved with another world size or a parameter the world size cannot split fails with one clear line.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <thread>

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/gpt.h"
#include "nanochat/optim.h"

using namespace nanochat;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;
using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

namespace {

// A Gloo process group of `ws` ranks; all ranks must create theirs at the same time (they rendezvous).
Group make_gloo_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int ws) {
  auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(60000));
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, ws, opts);
  // ProcessGroupGloo is a Backend, served through a ProcessGroup
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, ws);
  pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, c10::intrusive_ptr<c10d::Backend>(gloo));
  return pg;
}

// Runs fn(rank, group) on ws threads; the first exception of any rank is rethrown here. Barriers before and after
// fn keep every rank's group alive until all ranks are done with theirs: a group destroyed while a peer is still
// connecting (or finishing) makes that peer fail with "Connection closed by peer" — seen on a loaded machine.
void run_ranks(int ws, const std::function<void(int, Group)>& fn) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::exception_ptr> errors(ws);
  std::vector<std::thread> threads;
  for (int r = 0; r < ws; r++)
    threads.emplace_back([&, r] {
      try {
        Group pg = make_gloo_group(store, r, ws);
        pg->barrier()->wait();
        try {
          fn(r, pg);
        } catch (...) {
          errors[r] = std::current_exception();
        }
        pg->barrier()->wait();  // the failure tests throw on every rank before any collective, so this still meets
      } catch (...) {
        if (!errors[r]) errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// A tiny GPT: vocab rows 192 (divisible by 2 and 3); Muon groups [64,64] K=6, [32,64] K=6, [256,64] K=3,
// [64,256] K=3, ve_gate [1,12] K=2; AdamW lm_head/wte/value_embeds >= 1024 elements, the scalars and smear_gate
// below.
Named gpt_init() {
  GPTConfig c;
  c.sequence_len = 32;
  c.vocab_size = 192;
  c.n_layer = 3;
  c.n_head = 2;
  c.n_kv_head = 1;
  c.n_embd = 64;
  c.window_pattern = "L";
  GPT model(c);
  torch::manual_seed(42);
  model->init_weights();
  Named out;
  for (const auto& [k, v] : model->state_dict()) out.emplace_back(k, v.detach().clone());
  return out;
}

Named fresh(const Named& init) {
  Named out;
  for (const auto& [k, v] : init) out.emplace_back(k, v.clone().set_requires_grad(true));
  return out;
}

MuonAdamW make_optimizer(const Named& params, Group pg = {}) {
  return setup_optimizer(params, 64, 0.004, 0.2, 0.02, /*weight_decay=*/0.1, 0.5, std::move(pg));
}

using Grads = std::vector<std::map<std::string, torch::Tensor>>;  // per step

// Random values on a grid of 2^-20 (|x| < 2^-3 in practice): few enough significant bits that the sums and
// averages of a few of them are exact in fp32, whatever order a collective adds them in. So the tests compare
// the algorithm, not the rounding of one reduction order against another.
torch::Tensor grid_randn_like(const torch::Tensor& v) {
  return torch::round(torch::randn_like(v) * 0.01 * 1048576.0) / 1048576.0;
}

// Gradients for `steps` steps, and each rank's share: identical (every rank the full gradient) or split (rank r
// gets g + d_r with the d_r summing to zero, so their average is g).
Grads make_grads(const Named& init, int steps) {
  torch::manual_seed(7);
  Grads g(steps);
  for (int s = 0; s < steps; s++)
    for (const auto& [k, v] : init) g[s][k] = grid_randn_like(v);
  return g;
}
std::vector<Grads> rank_grads(const Grads& g, int ws, bool split) {
  std::vector<Grads> out(ws, g);
  if (!split) return out;
  torch::manual_seed(11);
  for (size_t s = 0; s < g.size(); s++)
    for (const auto& [k, v] : g[s]) {
      torch::Tensor sum = torch::zeros_like(v);
      for (int r = 0; r < ws - 1; r++) {
        torch::Tensor d = grid_randn_like(v);
        out[r][s][k] = v + d;
        sum += d;
      }
      out[ws - 1][s][k] = v - sum;
    }
  return out;
}

void run_steps(MuonAdamW& opt, const Named& params, const Grads& grads, int from, int to) {
  for (int s = from; s < to; s++) {
    for (const auto& [k, p] : params) p.mutable_grad() = grads[s].at(k).clone();
    opt.step();
    opt.zero_grad();
  }
}

std::map<std::string, torch::Tensor> snapshot(const Named& params) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, p] : params) out[k] = p.detach().clone();
  return out;
}

bool is_muon(const std::string& name) { return name.rfind("transformer.h.", 0) == 0; }

// ws ranks for `steps` steps vs. one process with the average gradient.
void expect_matches_single_process(int ws, bool split) {
  const Named init = gpt_init();
  const int steps = 3;
  const Grads grads = make_grads(init, steps);
  Named single = fresh(init);
  MuonAdamW opt = make_optimizer(single);
  run_steps(opt, single, grads, 0, steps);
  const auto expected = snapshot(single);

  const std::vector<Grads> per_rank = rank_grads(grads, ws, split);
  std::vector<std::map<std::string, torch::Tensor>> got(ws);
  run_ranks(ws, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW dist = make_optimizer(params, pg);
    ASSERT_EQ(dist.world_size(), ws);
    run_steps(dist, params, per_rank[rank], 0, steps);
    got[rank] = snapshot(params);
  });
  for (const auto& [k, p0] : init) {
    const double moved = (expected.at(k) - p0).abs().max().item<double>();
    EXPECT_GT(moved, 1e-5) << k << " did not move: the comparison would prove nothing";
    for (int r = 0; r < ws; r++) {
      const double diff = (got[r].at(k) - expected.at(k)).abs().max().item<double>();
      EXPECT_LE(diff, is_muon(k) ? 2e-3 : 1e-6) << k << " on rank " << r << " of " << ws;
      EXPECT_TRUE(torch::equal(got[r].at(k), got[0].at(k))) << k << ": rank " << r << " differs from rank 0";
    }
  }
}

c10::impl::GenericDict state_of(const c10::IValue& sd, int64_t index) {
  return sd.toGenericDict().at("state").toGenericDict().at(index).toGenericDict();
}

// The flat state index of a named parameter (param_groups order).
int64_t index_of(const MuonAdamW& opt, const std::string& name) {
  int64_t i = 0;
  for (const auto& g : opt.param_groups())
    for (const auto& n : g.names) {
      if (n == name) return i;
      i++;
    }
  ADD_FAILURE() << "no parameter " << name;
  return -1;
}

}  // namespace

TEST(OptimDist, TwoRanksIdenticalGradientsMatchOneProcess) { expect_matches_single_process(2, false); }

TEST(OptimDist, TwoRanksSplitGradientsMatchOneProcess) { expect_matches_single_process(2, true); }

TEST(OptimDist, ThreeRanksMatchOneProcess) { expect_matches_single_process(3, true); }

TEST(OptimDist, StateIsShardedInPythonLayout) {
  const Named init = gpt_init();
  const Grads grads = make_grads(init, 1);
  run_ranks(2, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW opt = make_optimizer(params, pg);
    run_steps(opt, params, grads, 0, 1);
    const c10::IValue sd = opt.state_dict();
    // AdamW over 1024 elements: this rank's 96 of 192 rows
    auto lm = state_of(sd, index_of(opt, "lm_head.weight"));
    EXPECT_EQ(lm.at("exp_avg").toTensor().sizes(), c10::IntArrayRef({96, 64}));
    EXPECT_EQ(lm.at("exp_avg_sq").toTensor().sizes(), c10::IntArrayRef({96, 64}));
    EXPECT_EQ(lm.at("step").toInt(), 1);
    // under 1024 elements: replicated, whole
    EXPECT_EQ(state_of(sd, index_of(opt, "resid_lambdas")).at("exp_avg").toTensor().sizes(), c10::IntArrayRef({3}));
    EXPECT_EQ(state_of(sd, index_of(opt, "smear_gate.weight")).at("exp_avg").toTensor().sizes(),
              c10::IntArrayRef({1, 24}));
    // Muon K=3 over 2 ranks: chunk 2 (rank 1 owns one matrix and a padding slot)
    auto fc = state_of(sd, index_of(opt, "transformer.h.0.mlp.c_fc.weight"));
    EXPECT_EQ(fc.at("momentum_buffer").toTensor().sizes(), c10::IntArrayRef({2, 256, 64}));
    EXPECT_EQ(fc.at("second_momentum_buffer").toTensor().sizes(), c10::IntArrayRef({2, 256, 1}));
    if (rank == 1) {  // the padding slot's state is never touched
      EXPECT_EQ(fc.at("momentum_buffer").toTensor()[1].abs().max().item<double>(), 0.0);
      EXPECT_GT(fc.at("momentum_buffer").toTensor()[0].abs().max().item<double>(), 0.0);
    }
    // ve_gate [1, 12], K=2: one matrix per rank, wide, so the second moment is per column
    auto ve = state_of(sd, index_of(opt, "transformer.h.0.attn.ve_gate.weight"));
    EXPECT_EQ(ve.at("momentum_buffer").toTensor().sizes(), c10::IntArrayRef({1, 1, 12}));
    EXPECT_EQ(ve.at("second_momentum_buffer").toTensor().sizes(), c10::IntArrayRef({1, 1, 12}));
  });
}

TEST(OptimDist, ThreeRanksRankWithoutMuonMatricesStillHoldsState) {
  const Named init = gpt_init();
  const Grads grads = make_grads(init, 1);
  run_ranks(3, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW opt = make_optimizer(params, pg);
    run_steps(opt, params, grads, 0, 1);
    // ve_gate K=2 over 3 ranks: chunk 1, rank 2 owns none but holds a zero [1, ...] buffer, as Python does
    auto ve = state_of(opt.state_dict(), index_of(opt, "transformer.h.0.attn.ve_gate.weight"));
    const torch::Tensor mb = ve.at("momentum_buffer").toTensor();
    EXPECT_EQ(mb.sizes(), c10::IntArrayRef({1, 1, 12}));
    EXPECT_EQ(mb.abs().max().item<double>() == 0.0, rank == 2);
  });
}

TEST(OptimDist, StateDictRoundTripContinuesIdentically) {
  const Named init = gpt_init();
  const Grads grads = make_grads(init, 4);
  const std::vector<Grads> per_rank = rank_grads(grads, 2, true);
  run_ranks(2, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW opt = make_optimizer(params, pg);
    run_steps(opt, params, per_rank[rank], 0, 2);
    const std::vector<char> saved = torch::pickle_save(opt.state_dict());  // this rank's optim file
    const auto at_save = snapshot(params);
    run_steps(opt, params, per_rank[rank], 2, 4);

    Named resumed;
    for (const auto& [k, p] : params) resumed.emplace_back(k, at_save.at(k).clone().set_requires_grad(true));
    MuonAdamW opt2 = make_optimizer(resumed, pg);
    opt2.load_state_dict(torch::pickle_load(saved));
    run_steps(opt2, resumed, per_rank[rank], 2, 4);
    for (size_t i = 0; i < params.size(); i++)
      EXPECT_TRUE(torch::equal(params[i].second, resumed[i].second)) << params[i].first << " on rank " << rank;
  });
}

TEST(OptimDist, StateOfAnotherWorldSizeIsRefused) {
  const Named init = gpt_init();
  const Grads grads = make_grads(init, 1);
  Named single = fresh(init);
  MuonAdamW opt = make_optimizer(single);
  run_steps(opt, single, grads, 0, 1);
  const c10::IValue one_rank = opt.state_dict();

  std::vector<c10::IValue> two_rank(2);
  run_ranks(2, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW dist = make_optimizer(params, pg);
    try {
      dist.load_state_dict(one_rank);
      ADD_FAILURE() << "a one-process state loaded into rank " << rank << " of 2";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("optimizer state was saved with world size 1 but this run has 2 processes"), std::string::npos)
          << msg;
      EXPECT_NE(msg.find("resume with the same number of processes"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    run_steps(dist, params, grads, 0, 1);
    two_rank[rank] = dist.state_dict();
  });
  // and a rank's shard into one process
  Named params = fresh(init);
  MuonAdamW back = make_optimizer(params);
  try {
    back.load_state_dict(two_rank[0]);
    ADD_FAILURE() << "a rank's shard loaded into one process";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("saved with world size 2 but this run has 1 process "), std::string::npos)
        << e.what();
  }
  // Muon state alone also names the world size (no AdamW state to tell it)
  c10::impl::GenericDict sd = two_rank[0].toGenericDict();
  c10::impl::GenericDict state = sd.at("state").toGenericDict();
  const int64_t fc = index_of(back, "transformer.h.0.mlp.c_fc.weight");
  c10::impl::GenericDict only_muon(c10::IntType::get(), c10::AnyType::get());
  only_muon.insert(fc, state.at(fc));
  c10::impl::GenericDict sd2(c10::StringType::get(), c10::AnyType::get());
  sd2.insert("state", only_muon);
  sd2.insert("param_groups", sd.at("param_groups"));
  try {
    back.load_state_dict(sd2);
    ADD_FAILURE() << "a rank's Muon shard loaded into one process";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("saved with world size 2 "), std::string::npos) << e.what();
  }
}

TEST(OptimDist, FirstDimensionNotDivisibleByWorldSizeFails) {
  run_ranks(3, [&](int rank, Group pg) {
    ParamGroup g;
    g.kind = GroupKind::adamw;
    g.names = {"table"};
    g.params = {torch::randn({4, 512}).set_requires_grad(true)};  // 2048 elements: sharded, 4 rows over 3 ranks
    g.lr = 0.1;
    MuonAdamW opt({g}, pg);
    g.params[0].mutable_grad() = torch::ones({4, 512});
    try {
      opt.step();
      ADD_FAILURE() << "stepped a 4-row parameter over 3 ranks";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("table"), std::string::npos) << msg;
      EXPECT_NE(msg.find("divisible by 3"), std::string::npos) << msg;
    }
  });
}

TEST(OptimDist, MissingGradientFailsOnEveryRank) {
  const Named init = gpt_init();
  run_ranks(2, [&](int rank, Group pg) {
    Named params = fresh(init);
    MuonAdamW opt = make_optimizer(params, pg);
    try {
      opt.step();
      ADD_FAILURE() << "stepped without gradients";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("has no gradient"), std::string::npos) << e.what();
    }
  });
}

TEST(OptimDist, Bf16AndOddShapesMatchOneProcess) {
  // A bf16 table (sharded), a bf16 scalar vector (replicated) and a Muon group of one matrix over 2 ranks
  // (rank 1 owns nothing), with the single process as reference.
  torch::manual_seed(3);
  const std::vector<torch::Tensor> init{torch::randn({8, 256}).to(torch::kBFloat16),
                                        torch::randn({5}).to(torch::kBFloat16), torch::randn({16, 8})};
  auto groups_for = [&](std::vector<torch::Tensor>& ps) {
    ParamGroup a;
    a.kind = GroupKind::adamw;
    a.params = {ps[0], ps[1]};
    a.names = {"table", "scalars"};
    a.lr = 0.05;
    a.initial_lr = 0.05;
    a.weight_decay = 0.01;
    ParamGroup m;
    m.kind = GroupKind::muon;
    m.params = {ps[2]};
    m.names = {"matrix"};
    m.lr = 0.02;
    m.initial_lr = 0.02;
    m.weight_decay = 0.1;
    return std::vector<ParamGroup>{a, m};
  };
  std::vector<std::vector<torch::Tensor>> grads;
  for (int s = 0; s < 3; s++) {
    grads.emplace_back();
    for (const auto& t : init) grads.back().push_back(torch::randn_like(t));
  }
  auto run = [&](std::vector<torch::Tensor>& ps, MuonAdamW& opt) {
    for (const auto& step_grads : grads) {
      for (size_t i = 0; i < ps.size(); i++) ps[i].mutable_grad() = step_grads[i].clone();
      opt.step();
      opt.zero_grad();
    }
  };
  std::vector<torch::Tensor> single;
  for (const auto& t : init) single.push_back(t.clone().set_requires_grad(true));
  MuonAdamW ref(groups_for(single));
  run(single, ref);
  run_ranks(2, [&](int rank, Group pg) {
    std::vector<torch::Tensor> ps;
    for (const auto& t : init) ps.push_back(t.clone().set_requires_grad(true));
    MuonAdamW opt(groups_for(ps), pg);
    run(ps, opt);
    // identical gradients on both ranks: the average is exact, so the update is too
    for (size_t i = 0; i < ps.size(); i++)
      EXPECT_TRUE(torch::equal(ps[i], single[i])) << "param " << i << " rank " << rank;
  });
}
