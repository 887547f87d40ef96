// Tests for the prefix cache (nanochat/prefix_cache.h) and the batch engine's use of it: longest-prefix lookup,
// replacement and LRU eviction under the budget, and — on the Python-written d2 fixture model — several chat turns of
// two concurrent conversations sharing a system prompt, whose replies must be token for token those of an engine
// without the cache, greedy and seeded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "nanochat/batch_engine.h"
#include "nanochat/load_model.h"
#include "nanochat/prefix_cache.h"

using namespace nanochat;

namespace {

// Keys/values of T positions whose every element is `fill` (L=2, Hkv=1, Dh=2: 16 bytes per position and tensor).
std::pair<torch::Tensor, torch::Tensor> rows(int64_t T, float fill) {
  return {torch::full({2, T, 1, 2}, fill), torch::full({2, T, 1, 2}, -fill)};
}
constexpr int64_t kBytesPerPosition = 2 * 2 * 1 * 2 * 4;  // k and v

void insert(PrefixCache& c, const std::vector<int32_t>& tokens, float fill) {
  auto [k, v] = rows(int64_t(tokens.size()), fill);
  c.insert(tokens, k, v);
}

}  // namespace

TEST(PrefixCache, LongestPrefixWinsAndLeavesATokenToRun) {
  PrefixCache c(1 << 20);
  insert(c, {1, 2, 3}, 1.0f);
  insert(c, {1, 2, 7, 8, 9}, 2.0f);
  auto hit = c.lookup({1, 2, 7, 8, 5}, 4);
  ASSERT_EQ(hit.length, 4);
  EXPECT_EQ(hit.k.size(1), 4);
  EXPECT_TRUE(torch::all(hit.k == 2.0f).item<bool>());
  EXPECT_TRUE(torch::all(hit.v == -2.0f).item<bool>());
  EXPECT_EQ(c.lookup({1, 2, 3, 4}, 3).length, 3);  // the cap: at least one prompt token is left to run
  EXPECT_EQ(c.lookup({1, 2, 3}, 2).length, 2);
  EXPECT_EQ(c.lookup({5, 1, 2}, 2).length, 0);  // a miss
  auto s = c.stats();
  EXPECT_EQ(s.lookups, 4);
  EXPECT_EQ(s.hits, 3);
  EXPECT_EQ(s.tokens_saved, 4 + 3 + 2);
  EXPECT_EQ(s.entries, 2);
  EXPECT_EQ(s.bytes, (3 + 5) * kBytesPerPosition);
}

TEST(PrefixCache, AnEntryReplacesItsPrefixesAndKeepsOnlyItsPositions) {
  PrefixCache c(1 << 20);
  insert(c, {1, 2}, 1.0f);
  insert(c, {1, 2, 3}, 1.0f);
  EXPECT_EQ(c.stats().entries, 1);  // {1, 2} is answered by {1, 2, 3}
  insert(c, {1, 2}, 1.0f);          // already covered: nothing new
  EXPECT_EQ(c.stats().entries, 1);
  // Tokens past the keys/values given are not stored (a finished row holds one token fewer than it handed out).
  auto [k, v] = rows(3, 4.0f);
  c.insert({4, 5, 6, 7}, k, v);
  EXPECT_EQ(c.lookup({4, 5, 6, 7, 8}, 4).length, 3);
  EXPECT_THROW(c.insert({4, 5}, k, v), c10::Error);  // more positions than tokens
}

TEST(PrefixCache, EvictsLeastRecentlyUsedUnderTheBudget) {
  PrefixCache c(10 * kBytesPerPosition);
  insert(c, {1, 1, 1, 1}, 1.0f);
  insert(c, {2, 2, 2, 2}, 2.0f);
  EXPECT_EQ(c.lookup({1, 1, 1, 1, 0}, 4).length, 4);  // {1...} is now the most recently used
  insert(c, {3, 3, 3, 3}, 3.0f);                      // 12 positions > 10: the least recently used goes
  EXPECT_EQ(c.lookup({2, 2, 2, 2, 0}, 4).length, 0);
  EXPECT_EQ(c.lookup({1, 1, 1, 1, 0}, 4).length, 4);
  EXPECT_EQ(c.lookup({3, 3, 3, 3, 0}, 4).length, 4);
  EXPECT_EQ(c.stats().bytes, 8 * kBytesPerPosition);
  insert(c, std::vector<int32_t>(11, 9), 9.0f);  // larger than the whole budget: not kept, nothing evicted
  EXPECT_EQ(c.stats().entries, 2);
  PrefixCache off(0);
  insert(off, {1, 2, 3}, 1.0f);
  EXPECT_EQ(off.lookup({1, 2, 3, 4}, 3).length, 0);
  EXPECT_EQ(off.stats().lookups, 0);
  EXPECT_FALSE(off.enabled());
}

namespace {

struct Chat {
  std::vector<int32_t> prompt;  // the conversation so far, primed for the assistant's reply
  double temperature;
  int64_t top_k;
  uint64_t seed;
};

std::vector<int32_t> reply(BatchEngine& engine, const Chat& chat, int max_tokens) {
  std::vector<int32_t> out;
  engine.generate(chat.prompt, max_tokens, chat.temperature, chat.top_k, chat.seed, [&](int32_t t) {
    out.push_back(t);
    return true;
  });
  return out;
}

}  // namespace

// Three turns of two conversations at once, sharing a system prompt; the second turn's user message repeats the
// first's, so a tokenization boundary lands inside a cached entry. Each reply goes back into the conversation as a
// server would send it back (decoded to text, encoded again), so the cached reply tokens may not all match.
TEST(PrefixCache, RepliesEqualAnEngineWithoutTheCache) {
  const std::filesystem::path base = std::filesystem::path(NANOCHAT_FIXTURES) / "python_basedir";
  ::setenv("NANOCHAT_BASE_DIR", base.c_str(), 1);
  LoadedModel lm = load_model("base", torch::kCPU, "eval");
  const Tokenizer& tok = lm.tokenizer;
  // max_batch 4: the batched steps then compute each row as it is computed alone (small_linear), so the two
  // engines may admit the conversations in either order.
  BatchEngine plain(lm.model, tok, 4), cached(lm.model, tok, 4, /*prefill_chunk=*/16, /*prefix_cache_bytes=*/64 << 20);
  const int32_t bos = tok.get_bos_token_id(), user_start = tok.encode_special("<|user_start|>"),
                user_end = tok.encode_special("<|user_end|>"),
                assistant_start = tok.encode_special("<|assistant_start|>"),
                assistant_end = tok.encode_special("<|assistant_end|>");
  auto user_turn = [&](std::vector<int32_t>& p, const std::string& text) {
    p.push_back(user_start);
    auto ids = tok.encode_ordinary(text);
    p.insert(p.end(), ids.begin(), ids.end());
    p.push_back(user_end);
    p.push_back(assistant_start);
  };
  const std::string system = "You are a helpful assistant who answers in one short sentence. ";
  std::vector<Chat> chats = {{{bos}, 0.0, 0, 1}, {{bos}, 0.9, 50, 7}};
  user_turn(chats[0].prompt, system + "What is the capital of France?");
  user_turn(chats[1].prompt, system + "Name a large animal.");
  const std::vector<std::vector<std::string>> next = {{"And of Spain?", "A smaller one?"},
                                                      {"And of Spain? Of Italy?", "A smaller one? A bird?"}};
  for (int turn = 0; turn < 3; ++turn) {
    std::vector<std::vector<int32_t>> want(chats.size()), got(chats.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < chats.size(); ++i) {
      threads.emplace_back([&, i] { want[i] = reply(plain, chats[i], 20); });
      threads.emplace_back([&, i] { got[i] = reply(cached, chats[i], 20); });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < chats.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << "turn " << turn << ", conversation " << i;
      if (turn == 2) continue;
      std::vector<int32_t> text_tokens = want[i];
      if (!text_tokens.empty() && text_tokens.back() == assistant_end) text_tokens.pop_back();
      auto again = tok.encode_ordinary(tok.decode(text_tokens));
      chats[i].prompt.insert(chats[i].prompt.end(), again.begin(), again.end());
      chats[i].prompt.push_back(assistant_end);
      user_turn(chats[i].prompt, next[size_t(turn)][i]);
    }
  }
  const PrefixCacheStats s = cached.prefix_cache_stats();
  EXPECT_EQ(s.lookups, 6);
  EXPECT_GE(s.hits, 4);  // turns 2 and 3 (and in turn 1 the system prompt, when one conversation was in first)
  EXPECT_GE(s.tokens_saved, int64_t(chats[0].prompt.size()) / 2);
  EXPECT_GT(s.entries, 0);
  EXPECT_EQ(plain.prefix_cache_stats().lookups, 0);
}
