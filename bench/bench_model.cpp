// bench_model: CPU training throughput of the GPT (forward + backward of the mean loss, no optimizer step) and
// the machine's matmul GFLOP/s, so that model FLOP utilization can be stated.
//
//   build/bench/bench_model                              # compute dtype fp32 (the CPU default)
//   NANOCHAT_DTYPE=bfloat16 build/bench/bench_model      # bf16 activations/matmuls (CPUs with avx512_bf16/AMX)
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 build/bench/bench_model   # one core
//
// Config as nanochat's CPU runs: head_dim 64, vocab 32768, max_seq_len 512, window pattern L, batch 4.
// Counters: tok/s, model GFLOP/s (estimate_flops × tok/s), and matmul GFLOP/s for the same dtype.
// Results and how they were taken: bench/RESULTS.md. Not covered: the optimizer step, data loading.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <thread>

#include <torch/torch.h>

#include "nanochat/compute.h"
#include "nanochat/gpt.h"
#include "nanochat/scaling.h"

using namespace nanochat;

namespace {

// One intra-op thread per core, unless OMP_NUM_THREADS says otherwise (e.g. =1 to measure work per core on a
// busy machine, where oversubscribed threads spin and inflate both wall and CPU time).
void set_threads() {
  static bool done = [] {
    const char* env = std::getenv("OMP_NUM_THREADS");
    int n = env && *env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
    torch::set_num_threads(std::max(1, n));
    return true;
  }();
  (void)done;
}

// [M,K] x [K,N] matmul GFLOP/s in the compute dtype, for shapes the d6 model uses.
void BM_Matmul(benchmark::State& state) {
  set_threads();
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  auto dt = compute_dtype();
  auto a = torch::randn({M, K}).to(dt), b = torch::randn({N, K}).to(dt);
  for (auto _ : state) {
    auto c = torch::matmul(a, b.t());
    benchmark::DoNotOptimize(c.data_ptr());
  }
  double flops = 2.0 * M * K * N;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(c10::toString(dt));
}
BENCHMARK(BM_Matmul)
    ->Args({2048, 384, 1536})
    ->Args({2048, 1536, 384})
    ->Args({2048, 384, 32768})
    ->Args({1024, 1024, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->MinTime(2.0);

void BM_TrainStep(benchmark::State& state) {
  set_threads();
  int64_t depth = state.range(0), B = 4, T = 512;
  auto cfg = model_config_for_depth(depth, 64, 64, T, "L", 32768);
  torch::manual_seed(42);
  GPT model(cfg);
  model->init_weights();
  {
    // Non-zero projections so that every path does real work (zero-init c_proj would make some grads trivial).
    torch::NoGradGuard g;
    for (auto& b : model->blocks) {
      b->attn->c_proj->weight.normal_(0, 0.02);
      b->mlp->c_proj->weight.normal_(0, 0.02);
    }
  }
  auto idx = torch::randint(0, cfg.vocab_size, {B, T}, torch::kLong);
  auto targets = torch::randint(0, cfg.vocab_size, {B, T}, torch::kLong);
  auto step = [&] {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();  // zero_grad(set_to_none=True)
    auto loss = model->forward(idx, targets);
    loss.backward();
    return loss.item<float>();
  };
  step();  // warm-up: first-touch allocations
  for (auto _ : state) benchmark::DoNotOptimize(step());
  double tokens = static_cast<double>(B * T);
  state.counters["tok/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(tokens * static_cast<double>(model->estimate_flops()) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(c10::toString(compute_dtype()));
}
BENCHMARK(BM_TrainStep)
    ->Arg(4)
    ->Arg(6)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
