// bench_tokenizer: tokenizer throughput and training time, for bench/RESULTS.md.
//   bash bench/make_tok_corpus.sh /tmp/tokbench/corpus.txt 12
//   NANOCHAT_TOK_CORPUS=/tmp/tokbench/corpus.txt build/bench/bench_tokenizer      (run from the repository root)
// Encode: cl100k_base ranks with GPT-4's pattern (what tiktoken_bench.py runs), the corpus cut into ~4 KB
// documents at newlines; one thread (encode_ordinary per document) and all threads (encode_batch). Pathological:
// 10 MB of one letter, 1 MB of one emoji. Train: nanochat's trainer at vocab 30000 (what hf_train_bench.py gets)
// with the resulting bytes/token on the corpus as a counter.
// Not covered: comparisons themselves (the Python scripts beside this file print the other side: tiktoken_bench.py,
// hf_train_bench.py, rustbpe_compare.py).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <thread>

#include "nanochat/bpe/bpe_train.h"
#include "nanochat/common.h"
#include "nanochat/bpe/split.h"
#include "nanochat/tokenizer.h"

using namespace nanochat;

namespace {

const std::string& corpus() {
  static const std::string text = [] {
    const char* p = std::getenv("NANOCHAT_TOK_CORPUS");
    std::string path = p && *p ? p : "/tmp/tokbench/corpus.txt";
    try {
      return read_file(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\nmake it with: bash bench/make_tok_corpus.sh %s 12\n", e.what(), path.c_str());
      std::exit(2);
    }
  }();
  return text;
}

// Cut at the first newline after every 4096 bytes.
const std::vector<std::string>& docs() {
  static const std::vector<std::string> d = [] {
    std::vector<std::string> out;
    const std::string& t = corpus();
    size_t start = 0;
    while (start < t.size()) {
      size_t end = std::min(t.size(), start + 4096);
      size_t nl = t.find('\n', end);
      end = nl == std::string::npos ? t.size() : nl + 1;
      out.push_back(t.substr(start, end - start));
      start = end;
    }
    return out;
  }();
  return d;
}

const Tokenizer& cl100k() {
  static const Tokenizer tok = [] {
    const char* p = std::getenv("NANOCHAT_TOK_RANKS");
    return Tokenizer::from_pretrained("cl100k_base", p && *p ? p : "tests/fixtures/tokenizer/cl100k_base.tiktoken");
  }();
  return tok;
}

void BM_EncodeOneThread(benchmark::State& state) {
  const Tokenizer& tok = cl100k();
  size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& d : docs()) tokens += tok.encode_ordinary(d).size();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus().size()));
  state.counters["tokens"] = double(tokens);
}

void BM_EncodeAllThreads(benchmark::State& state) {
  const Tokenizer& tok = cl100k();
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode_batch(docs(), std::nullopt, std::nullopt, threads));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus().size()));
  state.counters["threads"] = threads;
}

void BM_EncodeOneLetter10MB(benchmark::State& state) {
  const Tokenizer& tok = cl100k();
  std::string a(10'000'000, 'a');
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode_ordinary(a));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(a.size()));
}

void BM_EncodeOneEmoji1MB(benchmark::State& state) {
  const Tokenizer& tok = cl100k();
  std::string e;
  while (e.size() < 1'000'000) e += "\xF0\x9F\x98\x80";
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode_ordinary(e));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(e.size()));
}

void BM_Decode(benchmark::State& state) {
  const Tokenizer& tok = cl100k();
  auto ids = tok.encode_ordinary(corpus());
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus().size()));
}

void BM_Train30k(benchmark::State& state) {
  // Same path as tok_train: whole documents (one per line, as the HF trainer reads the file), nanochat's pattern.
  std::vector<std::string> lines;
  const std::string& t = corpus();
  for (size_t s = 0; s < t.size();) {
    size_t nl = t.find('\n', s);
    size_t e = nl == std::string::npos ? t.size() : nl + 1;
    lines.push_back(t.substr(s, e - s));
    s = e;
  }
  double ratio = 0;
  int vocab = 0;
  for (auto _ : state) {
    BpeTrainer trainer(kSplitPattern);
    for (size_t i = 0; i < lines.size(); i += 8192) {
      std::vector<std::string> buf(lines.begin() + long(i), lines.begin() + long(std::min(lines.size(), i + 8192)));
      trainer.add_documents(buf);
    }
    Tokenizer tok = make_nanochat_tokenizer(trainer.train(30000 - int(kSpecialTokens.size())));
    state.PauseTiming();
    size_t tokens = 0;
    for (const auto& ids : tok.encode_batch(lines)) tokens += ids.size();
    ratio = double(t.size()) / double(tokens);
    vocab = tok.get_vocab_size();
    state.ResumeTiming();
  }
  state.counters["bytes_per_token"] = ratio;
  state.counters["vocab"] = vocab;
}

}  // namespace

BENCHMARK(BM_EncodeOneThread)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeAllThreads)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_EncodeOneLetter10MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeOneEmoji1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Train30k)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
