// BPE training with rustbpe's semantics: hand-computed merges for small words (overlaps, ties, lazy count
// refresh, running out of pairs), and a brute-force reference trainer (recount every pair after every merge) that
// the incremental trainer must match merge for merge on random corpora.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "nanochat/bpe/bpe_train.h"
#include "nanochat/bpe/split.h"
#include "tests/unit/tokenizer_test_util.h"

using namespace nanochat;
using Merges = std::vector<std::pair<int32_t, int32_t>>;

static Merges train_words(const std::vector<std::pair<std::string, int64_t>>& words, int vocab) {
  BpeTrainer t(kSplitPattern, 1);
  for (const auto& [w, c] : words) t.add_piece(w, c);
  t.train(vocab);
  return t.merges();
}

TEST(BpeTrain, ThreeAs) {
  BpeTrainer t(kSplitPattern, 1);
  t.add_documents({"aaa"});
  Ranks r = t.train(257);
  EXPECT_EQ(t.merges(), (Merges{{97, 97}}));
  ASSERT_EQ(r.size(), 257u);
  EXPECT_EQ(r[256], (std::pair<std::string, int32_t>{"aa", 256}));
  EXPECT_EQ(r[65], (std::pair<std::string, int32_t>{"A", 65}));
}

TEST(BpeTrain, FourAsMergeTwiceThenOnce) {
  // "aaaa" -> [aa, aa] (non-overlapping), then (aa, aa).
  EXPECT_EQ(train_words({{"aaaa", 1}}, 300), (Merges{{97, 97}, {256, 256}}));
}

TEST(BpeTrain, FiveAsOverlapsAndTies) {
  // aaaaa: (a,a)x4 -> [aa,aa,a]; then (aa,a) and (aa,aa) tie at 1 -> the smaller pair (256,97) first -> [aa,aaa];
  // then (aa,aaa); then no pairs left: 3 merges although 44 were asked for.
  EXPECT_EQ(train_words({{"aaaaa", 1}}, 300), (Merges{{97, 97}, {256, 97}, {256, 257}}));
}

TEST(BpeTrain, TiesGoToTheSmallerPair) {
  EXPECT_EQ(train_words({{"cd", 1}, {"ab", 1}}, 258), (Merges{{97, 98}, {99, 100}}));
  EXPECT_EQ(train_words({{"ba", 2}, {"ab", 2}, {"zz", 3}}, 259), (Merges{{122, 122}, {97, 98}, {98, 97}}));
}

TEST(BpeTrain, CountsAreRefreshedAfterMerges) {
  // ab: 2+1 = 3, bc: 2+2 = 4 -> (b,c) first; then "abc" is [a,bc]: ab drops to 1, (a,bc) is 2 -> (a,bc); then ab.
  EXPECT_EQ(train_words({{"abc", 2}, {"bc", 2}, {"ab", 1}}, 259), (Merges{{98, 99}, {97, 256}, {97, 98}}));
}

TEST(BpeTrain, DocumentsAreSplitWithThePattern) {
  // Pieces: "hello", " hello", " world": "el","ll","lo","he" appear twice, " h", " w"... once.
  BpeTrainer t(kSplitPattern, 2);
  t.add_documents({"hello hello world", "hello"});
  EXPECT_EQ(t.num_unique_pieces(), 3u);
  t.train(257);
  // hello x2 + " hello" x1: (e,l),(h,e),(l,l),(l,o) all 3; smallest pair is (e,l) = (101,108).
  EXPECT_EQ(t.merges(), (Merges{{101, 108}}));
}

// The definition, computed the slow way: after every merge recount all pairs; take the most frequent pair, the
// smallest on ties; rewrite every word left to right without overlaps.
static Merges brute_force(const std::map<std::string, int64_t>& pieces, int vocab) {
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (const auto& [p, c] : pieces) {
    words.emplace_back(p.begin(), p.end());
    for (auto& id : words.back()) id &= 0xFF;
    counts.push_back(c);
  }
  Merges merges;
  while (int(merges.size()) < vocab - 256) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pc;
    for (size_t w = 0; w < words.size(); w++)
      for (size_t i = 0; i + 1 < words[w].size(); i++) pc[{words[w][i], words[w][i + 1]}] += counts[w];
    std::pair<int32_t, int32_t> best{-1, -1};
    int64_t best_c = 0;
    for (const auto& [p, c] : pc)
      if (c > best_c) best = p, best_c = c;  // map order: the first max is the smallest pair
    if (best_c <= 0) break;
    int32_t id = 256 + int32_t(merges.size());
    merges.push_back(best);
    for (auto& w : words) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == best.first && w[i + 1] == best.second) {
          out.push_back(id);
          i += 2;
        } else {
          out.push_back(w[i++]);
        }
      }
      w = out;
    }
  }
  return merges;
}

TEST(BpeTrain, MatchesBruteForceOnRandomCorpora) {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "c", "ab", " ", "\n", "1", "é", "😀", ".", "aa"};
  for (int trial = 0; trial < 12; trial++) {
    std::vector<std::string> docs;
    for (int d = 0; d < 30; d++) {
      std::string doc;
      int len = int(rng() % 80);
      for (int k = 0; k < len; k++) doc += alphabet[rng() % (trial % 2 ? 4 : alphabet.size())];
      docs.push_back(doc);
    }
    Splitter sp(kSplitPattern);
    std::map<std::string, int64_t> pieces;
    for (const auto& d : docs) sp.for_each(d, [&](std::string_view p) { pieces[std::string(p)]++; });
    int vocab = 256 + 40 + trial * 10;
    BpeTrainer t(kSplitPattern, 2);
    t.add_documents(docs);
    t.train(vocab);
    EXPECT_EQ(t.merges(), brute_force(pieces, vocab)) << "trial " << trial;
  }
}

TEST(BpeTrain, TrainedTokenizerRoundTripsAndEncodesWithItsMerges) {
  std::vector<std::string> docs;
  for (const auto& row : tok_test::read_jsonl(tok_test::fixture("parquet/pretrain/shard_00000.expected.jsonl")))
    docs.push_back(row["text"]);
  ASSERT_FALSE(docs.empty());
  Tokenizer tok = train_tokenizer(docs, 512);
  EXPECT_EQ(tok.get_vocab_size(), 512);
  EXPECT_EQ(tok.encode_special("<|bos|>"), 503);
  EXPECT_EQ(tok.encode_special("<|output_end|>"), 511);
  EXPECT_EQ(tok.name(), "rustbpe");
  size_t total_tokens = 0, total_bytes = 0;
  for (const auto& d : docs) {
    auto ids = tok.encode(d);
    EXPECT_EQ(tok.decode(ids), d);
    total_tokens += ids.size();
    total_bytes += d.size();
  }
  EXPECT_LT(total_tokens * 3, total_bytes * 2);     // 247 merges on this random-word text compress it > 1.5x
  EXPECT_THROW(train_tokenizer(docs, 264), Error);  // 264 - 9 < 256
}
