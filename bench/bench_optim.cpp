// bench_optim: time of one MuonAdamW step for the parameter shapes of runs/runcpu.sh's depth-6 model
// (n_embd 384, 6 heads of 64, vocab 32768, value embeddings on layers 1, 3, 5), on CPU in fp32.
//
//   cmake --build build --target bench_optim && build/bench/bench_optim
//
// Reports the whole step, the AdamW groups alone (embeddings, lm_head, scalars: ~63M parameters, memory bound)
// and the Muon groups alone (~10.6M parameters in 4 stacked shape groups, matmul bound), plus Polar Express on
// its own. Gradients are random and fixed; the timed loop is only step(). Not covered: CUDA, bf16 parameters.
#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "nanochat/optim.h"

using namespace nanochat;

namespace {

constexpr int64_t kLayers = 6, kDim = 384, kHeads = 6, kVocab = 32768;

// The depth-6 model's parameters in model order, with random values and gradients.
std::vector<std::pair<std::string, torch::Tensor>> d6_params() {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> p;
  auto add = [&](const std::string& n, std::vector<int64_t> shape) {
    torch::Tensor t = torch::randn(shape) * 0.02;
    t.mutable_grad() = torch::randn(shape) * 1e-3;
    p.emplace_back(n, t);
  };
  add("resid_lambdas", {kLayers});
  add("x0_lambdas", {kLayers});
  add("smear_lambda", {1});
  add("backout_lambda", {1});
  add("transformer.wte.weight", {kVocab, kDim});
  for (int64_t i = 0; i < kLayers; i++) {
    const std::string h = "transformer.h." + std::to_string(i) + ".";
    for (const char* m : {"attn.c_q", "attn.c_k", "attn.c_v", "attn.c_proj"}) add(h + m + ".weight", {kDim, kDim});
    if (i % 2 == (kLayers - 1) % 2) add(h + "attn.ve_gate.weight", {kHeads, 12});
    add(h + "mlp.c_fc.weight", {4 * kDim, kDim});
    add(h + "mlp.c_proj.weight", {kDim, 4 * kDim});
  }
  add("lm_head.weight", {kVocab, kDim});
  add("smear_gate.weight", {1, 24});
  for (int64_t i = 0; i < kLayers; i++)
    if (i % 2 == (kLayers - 1) % 2) add("value_embeds." + std::to_string(i) + ".weight", {kVocab, kDim});
  return p;
}

// kind < 0: all groups; else only the groups of that kind.
void run_steps(benchmark::State& state, int kind) {
  auto params = d6_params();
  MuonAdamW full = setup_optimizer(params, kDim, 0.004, 0.2, 0.02, 0.2, 0.5);
  std::vector<ParamGroup> groups;
  int64_t numel = 0;
  for (const auto& g : full.param_groups())
    if (kind < 0 || static_cast<int>(g.kind) == kind) {
      groups.push_back(g);
      for (const auto& p : g.params) numel += p.numel();
    }
  MuonAdamW opt(groups);
  opt.step();  // creates the state outside the timed loop
  for (auto _ : state) opt.step();
  state.counters["params"] = static_cast<double>(numel);
  state.counters["threads"] = torch::get_num_threads();
}

void BM_MuonAdamWStep(benchmark::State& state) { run_steps(state, -1); }
void BM_AdamWGroupsStep(benchmark::State& state) { run_steps(state, static_cast<int>(GroupKind::adamw)); }
void BM_MuonGroupsStep(benchmark::State& state) { run_steps(state, static_cast<int>(GroupKind::muon)); }

void BM_PolarExpress(benchmark::State& state) {
  const int64_t K = state.range(0), rows = state.range(1), cols = state.range(2);
  torch::Tensor X = torch::randn({K, rows, cols}).to(torch::kBFloat16);
  for (auto _ : state) benchmark::DoNotOptimize(polar_express(X, 5));
}

}  // namespace

BENCHMARK(BM_MuonAdamWStep)->Unit(benchmark::kMillisecond)->MinTime(5.0);
BENCHMARK(BM_AdamWGroupsStep)->Unit(benchmark::kMillisecond)->MinTime(5.0);
BENCHMARK(BM_MuonGroupsStep)->Unit(benchmark::kMillisecond)->MinTime(5.0);
// the depth-6 Muon stacks: q,k,v,o [24, 384, 384]; c_fc [6, 1536, 384]; mlp.c_proj [6, 384, 1536]
BENCHMARK(BM_PolarExpress)
    ->Args({24, 384, 384})
    ->Args({6, 1536, 384})
    ->Args({6, 384, 1536})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);

BENCHMARK_MAIN();
