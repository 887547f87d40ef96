// Tokenizer robustness: decode(encode(s)) == s for 10,000 random valid UTF-8 strings (0-1000 code points, many
// scripts, emoji, combining marks, digit and whitespace runs); random bytes through decode and random (also
// invalid) strings through encode never crash; the split covers every byte; long runs of one letter or one emoji
// encode (the heap path) exactly like the linear path would. Runs on all hardware threads.
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <atomic>

#include "nanochat/bpe/bpe.h"
#include "nanochat/bpe/utf8.h"
#include "tests/unit/tokenizer_test_util.h"

using namespace nanochat;

namespace {

uint32_t random_code_point(std::mt19937& rng) {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},     {0x30, 0x39},       {0x09, 0x0D},     {0x20, 0x20},     {0x41, 0x5A},     {0x61, 0x7A},
      {0xA0, 0x24F},    {0x300, 0x36F},     {0x370, 0x3FF},   {0x400, 0x4FF},   {0x590, 0x6FF},   {0x900, 0x97F},
      {0x1780, 0x17FF}, {0x2000, 0x206F},   {0x3000, 0x303F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0xFF00, 0xFFEF}, {0x1F300, 0x1FAFF}, {0x200D, 0x200D}, {0xFE0F, 0xFE0F}, {0x85, 0x85},     {0x10000, 0x10FFFF}};
  const auto& [lo, hi] = ranges[rng() % ranges.size()];
  uint32_t cp = lo + rng() % (hi - lo + 1);
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
  return cp;
}

std::string random_text(std::mt19937& rng, size_t max_cps) {
  std::string s;
  size_t n = rng() % (max_cps + 1);
  while (n > 0) {
    uint32_t cp = random_code_point(rng);
    size_t run = rng() % 8 == 0 ? 1 + rng() % 12 : 1;  // runs of the same character
    for (size_t k = 0; k < run && n > 0; k++, n--) append_utf8(s, cp);
  }
  return s;
}

template <typename F>
void on_all_threads(int total, F f) {
  unsigned n = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n; t++)
    pool.emplace_back([&, t] {
      for (int i = int(t); i < total; i += int(n)) f(i);
    });
  for (auto& th : pool) th.join();
}

}  // namespace

TEST(TokenizerFuzz, RoundTripTenThousandRandomStrings) {
  const Tokenizer& tok = tok_test::cl100k(true);
  std::atomic<int> failures{0};
  on_all_threads(10000, [&](int i) {
    std::mt19937 rng{uint32_t(i)};
    std::string s = random_text(rng, 1000);
    if (tok.decode(tok.encode_ordinary(s)) != s) failures++;
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(TokenizerFuzz, SmallVocabRoundTrip) {
  const Tokenizer& tok = tok_test::small_pkl();
  std::atomic<int> failures{0};
  on_all_threads(2000, [&](int i) {
    std::mt19937 rng{uint32_t(100000 + i)};
    std::string s = random_text(rng, 300);
    if (tok.decode(tok.encode_ordinary(s)) != s) failures++;
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(TokenizerFuzz, RandomBytesNeverCrash) {
  const Tokenizer& tok = tok_test::cl100k(true);
  std::mt19937 rng(1);
  for (int i = 0; i < 3000; i++) {
    std::string b(rng() % 200, 0);
    for (auto& c : b) c = char(rng());
    std::string d = decode_utf8_replace(b);
    EXPECT_TRUE(is_valid_utf8(d));
    auto ids = tok.encode_ordinary(b);  // invalid input is cleaned like Python's errors="replace"
    for (int32_t id : ids) EXPECT_LT(id, tok.get_vocab_size());
    EXPECT_EQ(tok.decode(ids), d);
    std::vector<int32_t> rid(rng() % 50);
    for (auto& id : rid) id = int32_t(rng() % 100000);
    EXPECT_TRUE(is_valid_utf8(tok.decode(rid)));
  }
  EXPECT_THROW(tok.decode({-1}), Error);
  EXPECT_THROW(tok.decode({tok.get_vocab_size()}), Error);
}

TEST(TokenizerFuzz, SplitCoversEveryByte) {
  Splitter sp(kSplitPattern), sp4(kGpt4Pattern), sp2(kGpt2Pattern);
  std::mt19937 rng(3);
  for (int i = 0; i < 500; i++) {
    std::string s = random_text(rng, 200);
    for (const Splitter* p : {&sp, &sp4, &sp2}) {
      std::string joined;
      for (auto piece : p->split(s)) joined += piece;
      EXPECT_EQ(joined, s);
    }
  }
}

TEST(TokenizerFuzz, LongRunsUseTheHeapPathWithTheSameResult) {
  const Tokenizer& tok = tok_test::cl100k(true);
  // Pieces of 129+ bytes go through the heap path; it must agree with tiktoken's linear algorithm.
  RankMap ranks;
  for (const auto& [b, r] : tok.mergeable_ranks()) ranks.insert(b, r);
  std::mt19937 rng(5);
  for (int i = 0; i < 200; i++) {
    std::string piece;
    size_t n = 129 + rng() % 300;
    const char* alph[] = {"a", "b", "ab", "😀", "é", " "};
    while (piece.size() < n) piece += alph[rng() % (i % 3 == 0 ? 1 : 6)];
    std::vector<int32_t> heap_ids, ref;
    bpe_encode(ranks, piece, heap_ids);
    // Reference: tiktoken's linear algorithm written out plainly.
    std::vector<size_t> pos;
    for (size_t k = 0; k <= piece.size(); k++) pos.push_back(k);
    while (true) {
      int32_t best = INT32_MAX;
      size_t bi = 0;
      for (size_t k = 0; k + 2 < pos.size(); k++) {
        int32_t r = ranks.find(std::string_view(piece).substr(pos[k], pos[k + 2] - pos[k]));
        if (r >= 0 && r < best) best = r, bi = k;
      }
      if (best == INT32_MAX) break;
      pos.erase(pos.begin() + long(bi) + 1);
    }
    for (size_t k = 0; k + 1 < pos.size(); k++)
      ref.push_back(ranks.find(std::string_view(piece).substr(pos[k], pos[k + 1] - pos[k])));
    EXPECT_EQ(heap_ids, ref) << "piece of " << piece.size() << " bytes";
  }
  // Pathological inputs stay fast and exact: a 1 MB run of one letter and of one emoji.
  std::string a(1 << 20, 'a');
  EXPECT_EQ(tok.decode(tok.encode_ordinary(a)), a);
  std::string e;
  while (e.size() < (1 << 20)) e += "😀";
  EXPECT_EQ(tok.decode(tok.encode_ordinary(e)), e);
}
