// bench_decode: the matrix-vector products of KV-cache decoding — nanochat's small_linear kernel against
// torch::linear (BLAS gemv) on the same weights, side by side in one process, for the d6 shapes.
//
//   build/bench/bench_decode                      # all shapes, rows 1 and 8
//   build/bench/bench_decode --benchmark_filter=32768
//
// Counter GB/s = weight bytes read per call / time: decoding is bound by memory bandwidth, so this is the figure
// to compare with the machine's copy bandwidth. Results: bench/RESULTS.md. Not covered: attention, sampling.
#include <benchmark/benchmark.h>

#include <thread>

#include <torch/torch.h>

#include "nanochat/cpu/small_linear.h"

using namespace nanochat;

namespace {

template <bool kSmall>
void BM_Linear(benchmark::State& state) {
  static bool threads_set = (torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency())), true);
  (void)threads_set;
  torch::NoGradGuard no_grad;
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  torch::Tensor x = torch::randn({M, K}), w = torch::randn({N, K});
  for (auto _ : state) {
    torch::Tensor y = kSmall ? small_linear(x, w) : torch::linear(x, w);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// (rows, in, out): attention q/k/v/proj, MLP fc and proj, lm_head of a depth-6 model.
void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t M : {1, 2, 4, 8})
    for (auto [K, N] : {std::pair<int64_t, int64_t>{384, 384}, {384, 1536}, {1536, 384}, {384, 32768}})
      b->Args({M, K, N});
}

BENCHMARK(BM_Linear<false>)->Name("torch_linear")->Apply(shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Linear<true>)->Name("small_linear")->Apply(shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
