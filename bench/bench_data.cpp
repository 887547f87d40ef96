// bench_data: how fast the data path runs — parquet decode (MB/s of text) and the pretraining loader
// (tokens/s and MB/s of text) — on one thread and on all cores.
//
//   build/bench/bench_data                      (results and the machine they came from: bench/RESULTS.md)
//
// The shard is synthetic: ~35 MB of Zipf-distributed pseudo-words, written by our
// writer exactly like nanochat's shards (ZSTD level 3, row groups of 1024 documents). The loader uses a byte-level
// encoder (one token per byte; no BPE), so it measures reading + packing + the pipeline, not a tokenizer:
// with a real BPE tokenizer expect ~4x fewer tokens per byte and the encoder's own cost on top.
#include <benchmark/benchmark.h>

#include <random>
#include <thread>

#include "nanochat/common.h"
#include "nanochat/dataloader.h"
#include "nanochat/parquet.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

struct BenchShards {
  fs::path dir;
  std::vector<fs::path> files;
  int64_t text_bytes = 0;  // per file
  BenchShards() {
    dir = fs::temp_directory_path() / fmt::format("nanochat_bench_data_{}", ::getpid());
    fs::create_directories(dir);
    // A Zipf-distributed vocabulary of 20k pseudo-words: compresses about like English under zstd.
    std::mt19937 rng(0);
    std::vector<std::string> vocab;
    for (int i = 0; i < 20000; i++) {
      std::string w;
      for (size_t k = 0, n = 2 + rng() % 9; k < n; k++) w.push_back(char('a' + rng() % 26));
      vocab.push_back(w);
    }
    std::vector<double> weights;
    for (int i = 0; i < 20000; i++) weights.push_back(1.0 / (i + 1));
    std::discrete_distribution<int> zipf(weights.begin(), weights.end());
    for (int f = 0; f < 1; f++) {
      fs::path p = dir / index_to_filename(f);
      ParquetStringWriter w(p, "text");
      int64_t bytes = 0;
      for (int rg = 0; rg < 24; rg++) {
        std::vector<std::string> docs;
        for (int i = 0; i < 1024; i++) {
          std::string d;
          size_t n = 50 + rng() % 300;
          for (size_t k = 0; k < n; k++) d += vocab[size_t(zipf(rng))] + (rng() % 12 ? " " : ".\n\n");
          bytes += int64_t(d.size());
          docs.push_back(std::move(d));
        }
        w.write_row_group(docs);
      }
      w.finish();
      files.push_back(p);
      text_bytes = bytes;
    }
  }
  ~BenchShards() { fs::remove_all(dir); }
};

BenchShards& shards() {
  static BenchShards s;
  return s;
}

std::vector<std::vector<int>> byte_encode(const std::vector<std::string>& texts) {
  std::vector<std::vector<int>> out(texts.size());
  for (size_t i = 0; i < texts.size(); i++) out[i].assign(texts[i].begin(), texts[i].end());
  for (auto& v : out)
    for (auto& t : v) t &= 0xff;
  return out;
}

// Decode every row group of one shard's `text` column; with N benchmark threads, thread t takes row groups
// t, t+N, ... (as N ranks would).
void BM_ParquetDecode(benchmark::State& state) {
  auto& s = shards();
  ParquetFile pf(s.files[0]);
  int64_t bytes = 0;
  for (auto _ : state) {
    for (int rg = state.thread_index(); rg < pf.num_row_groups(); rg += state.threads()) {
      auto docs = pf.read_strings(rg, "text");
      for (auto& d : docs) bytes += int64_t(d.size());
      benchmark::DoNotOptimize(docs.data());
    }
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ParquetDecode)->Threads(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ParquetDecode)->Threads(int(std::max(1u, std::thread::hardware_concurrency())))->Unit(benchmark::kMillisecond)->UseRealTime();

// The pretraining loader at nanochat's shapes (B=32, T=2048), tokenizer_threads = arg.
void BM_LoaderTokens(benchmark::State& state) {
  auto& s = shards();
  const int B = 32, T = 2048;
  DataLoader loader(byte_encode, 256, B, T, "train", torch::kCPU, 0, 1, std::nullopt, {s.files[0]}, int(state.range(0)));
  loader.next();  // warm up the pipeline
  int64_t batches = 0;
  for (auto _ : state) {
    auto b = loader.next();
    benchmark::DoNotOptimize(b.inputs.data_ptr());
    batches++;
  }
  state.counters["tokens/s"] = benchmark::Counter(double(batches) * B * T, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderTokens)->Arg(1)->Arg(int(std::max(1u, std::thread::hardware_concurrency())))->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
