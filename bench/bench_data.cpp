// bench_data: how fast the data path runs — parquet decode (MB/s of text) and the pretraining loader
// (tokens/s) — on one thread and on all cores.
//
//   build/bench/bench_data     (from the repository root; results and the machine they came from: bench/RESULTS.md)
//
// The shard is synthetic: ~35 MB of text, Zipf-distributed words from the fixture shards' vocabulary (10k real
// words), written by our writer exactly like nanochat's shards (ZSTD level 3, row groups of 1024 documents).
// The loader runs at nanochat's shapes (B=32, T=2048) with two encoders: "byte" (one token per byte: measures
// reading + packing + the pipeline alone) and "bpe" (our tokenizer with the cl100k ranks and nanochat's split
// pattern, one thread per tokenizer worker).
#include <benchmark/benchmark.h>

#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/dataloader.h"
#include "nanochat/formats/parquet.h"
#include "nanochat/tokenizer.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

// Run from the repository root, or point NANOCHAT_FIXTURES at tests/fixtures.
const fs::path kFixtures = [] {
  std::string env = getenv_or("NANOCHAT_FIXTURES", "");
  if (!env.empty()) return fs::path(env);
  fs::path here = fs::path(__FILE__).parent_path().parent_path() / "tests" / "fixtures";
  return fs::exists("tests/fixtures") ? fs::path("tests/fixtures") : here;
}();
const int kAllThreads = int(std::max(1u, std::thread::hardware_concurrency()));

struct BenchShard {
  fs::path dir, file;
  BenchShard() {
    dir = fs::temp_directory_path() / fmt::format("nanochat_bench_data_{}", ::getpid());
    fs::create_directories(dir);
    std::set<std::string> words;
    for (int i = 0; i < 3; i++) {
      std::ifstream in(kFixtures / "parquet" / "pretrain" / fmt::format("shard_{:05d}.expected.jsonl", i));
      for (std::string line; std::getline(in, line);) {
        std::istringstream ws(nlohmann::json::parse(line)["text"].get<std::string>());
        for (std::string w; ws >> w;) words.insert(w);
      }
    }
    if (words.empty()) fail("bench_data needs tests/fixtures/parquet/pretrain (looked in {})", kFixtures.string());
    std::vector<std::string> vocab(words.begin(), words.end());
    std::mt19937 rng(0);
    std::shuffle(vocab.begin(), vocab.end(), rng);
    std::vector<double> weights;
    for (size_t i = 0; i < vocab.size(); i++) weights.push_back(1.0 / double(i + 1));
    std::discrete_distribution<size_t> zipf(weights.begin(), weights.end());
    file = dir / index_to_filename(0);
    ParquetStringWriter w(file, "text");
    for (int rg = 0; rg < 24; rg++) {
      std::vector<std::string> docs;
      for (int i = 0; i < 1024; i++) {
        std::string d;
        for (size_t k = 0, n = 50 + rng() % 400; k < n; k++) d += vocab[zipf(rng)] + (rng() % 12 ? " " : ".\n\n");
        docs.push_back(std::move(d));
      }
      w.write_row_group(docs);
    }
    w.finish();
  }
  ~BenchShard() { fs::remove_all(dir); }
};

BenchShard& shard() {
  static BenchShard s;
  return s;
}

const Tokenizer& cl100k() {
  static Tokenizer tok = [] {
    std::ifstream in(kFixtures / "tokenizer" / "patterns.json");
    std::string pattern = nlohmann::json::parse(in)["nanochat"];
    SpecialTokens specials;
    for (size_t i = 0; i < kSpecialTokens.size(); i++) specials.emplace_back(kSpecialTokens[i], int32_t(100277 + i));
    return Tokenizer::from_tiktoken_file(kFixtures / "tokenizer" / "cl100k_base.tiktoken", pattern, specials, "<|bos|>",
                                         "cl100k_nanochat");
  }();
  return tok;
}

std::vector<std::vector<int>> byte_encode(const std::vector<std::string>& texts) {
  std::vector<std::vector<int>> out(texts.size());
  for (size_t i = 0; i < texts.size(); i++)
    for (unsigned char c : texts[i]) out[i].push_back(c);
  return out;
}

std::vector<std::vector<int>> bpe_encode(const std::vector<std::string>& texts) {
  return cl100k().encode_batch(texts, std::nullopt, std::nullopt, 1);
}

// Decode every row group of the shard's `text` column; with N benchmark threads, thread t takes row groups
// t, t+N, ... (as N ranks would). Throughput = the whole shard's text per iteration time.
void BM_ParquetDecode(benchmark::State& state) {
  ParquetFile pf(shard().file);
  int64_t bytes = 0;
  const std::clock_t c0 = std::clock();
  for (auto _ : state) {
    for (int rg = state.thread_index(); rg < pf.num_row_groups(); rg += state.threads()) {
      auto docs = pf.read_strings(rg, "text");
      for (auto& d : docs) bytes += int64_t(d.size());
      benchmark::DoNotOptimize(docs.data());
    }
  }
  state.SetBytesProcessed(bytes);
  if (state.thread_index() == 0)
    state.counters["MB/cpu_s"] =
        double(bytes) * state.threads() / 1e6 / std::max(double(std::clock() - c0) / CLOCKS_PER_SEC, 1e-9);
}
BENCHMARK(BM_ParquetDecode)->Threads(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ParquetDecode)->Threads(kAllThreads)->Unit(benchmark::kMillisecond)->UseRealTime();

// The pretraining loader at B=32, T=2048; range(0) = encoder (0 byte, 1 bpe), range(1) = tokenizer threads.
void BM_Loader(benchmark::State& state) {
  const int B = 32, T = 2048;
  const bool bpe = state.range(0) == 1;
  if (bpe) cl100k();
  DataLoader loader(bpe ? BatchEncoder(bpe_encode) : BatchEncoder(byte_encode), 256, B, T, "train", torch::kCPU, 0, 1,
                    std::nullopt, {shard().file}, int(state.range(1)));
  loader.next();  // fill the pipeline
  int64_t batches = 0;
  const std::clock_t c0 = std::clock();  // CPU time of the whole process (all loader threads)
  for (auto _ : state) {
    auto b = loader.next();
    benchmark::DoNotOptimize(b.inputs.data_ptr());
    batches++;
  }
  state.SetLabel(bpe ? "bpe cl100k" : "byte");
  const double cpu_s = double(std::clock() - c0) / CLOCKS_PER_SEC;
  state.counters["tokens/s"] = benchmark::Counter(double(batches) * B * T, benchmark::Counter::kIsRate);
  // Throughput per CPU-second: stays meaningful on a machine shared with other jobs.
  state.counters["tokens/cpu_s"] = double(batches) * B * T / std::max(cpu_s, 1e-9);
}
BENCHMARK(BM_Loader)
    ->Args({0, 1})
    ->Args({0, kAllThreads})
    ->Args({1, 1})
    ->Args({1, kAllThreads})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

// Bytes of text per BPE token on this text, to turn the loader's tokens/s into MB/s of text.
void BM_BpeBytesPerToken(benchmark::State& state) {
  ParquetFile pf(shard().file);
  auto docs = pf.read_strings(0, "text");
  docs.resize(256);
  int64_t bytes = 0, tokens = 0;
  const std::clock_t c0 = std::clock();
  for (auto _ : state) {
    for (auto& ids : bpe_encode(docs)) tokens += int64_t(ids.size());
    for (auto& d : docs) bytes += int64_t(d.size());
  }
  state.counters["bytes/token"] = double(bytes) / double(std::max<int64_t>(1, tokens));
  state.counters["MB/cpu_s"] = double(bytes) / 1e6 / std::max(double(std::clock() - c0) / CLOCKS_PER_SEC, 1e-9);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_BpeBytesPerToken)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
