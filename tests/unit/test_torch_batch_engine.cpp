// Tests for continuous batching: KV-cache rows at different positions (load_row/move_row, both decode paths) and
// BatchEngine, whose every conversation must get the tokens Engine::generate gives it alone, whatever else shares
// the batch, joins or leaves meanwhile.
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "nanochat/batch_engine.h"
#include "nanochat/common.h"
#include "model_test_util.h"
#include "tokenizer_test_util.h"
#include "nanochat/cpu/decode.h"

using namespace nanochat;

namespace {

using tok_test::byte_tokenizer;

// Depth 3 (value embeddings on layers 0 and 2), GQA 4 over 2 heads, a 5-key window on layer 0 that decoding slides
// past, every term of the step awake; the lm_head's <|assistant_end|> row is scaled up so that sampled replies end
// at different lengths.
GPT random_model() {
  GPT m = model_test::small_random_gpt(byte_tokenizer().get_vocab_size(), /*seed=*/5);
  torch::NoGradGuard no_grad;
  m->lm_head->weight.normal_(0, 0.5);
  m->lm_head->weight[byte_tokenizer().encode_special("<|assistant_end|>")].mul_(1.4);
  m->window_sizes[0] = {5, 0};
  return m;
}

KVCache cache_for(const GPT& m, int64_t batch, int64_t len, torch::Dtype dtype = torch::kFloat) {
  const auto& c = m->config;
  return KVCache(batch, c.n_kv_head, len, c.n_embd / c.n_head, c.n_layer, torch::kCPU, dtype);
}

float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

std::vector<int32_t> prompt(const std::string& text) { return byte_tokenizer().encode(text, "<|bos|>"); }

// Engine::generate with one sample: the reference a batched conversation must equal.
std::vector<int32_t> alone(Engine& engine, const std::vector<int32_t>& p, int max_tokens, double temperature,
                           int64_t top_k, uint64_t seed) {
  std::vector<int32_t> out;
  engine.generate(p, 1, max_tokens, temperature, top_k, seed, [&](const std::vector<int32_t>& col, auto&) {
    out.push_back(col[0]);
    return true;
  });
  return out;
}

struct Conversation {
  std::string text;
  int max_tokens;
  double temperature;
  int64_t top_k;
  uint64_t seed;
};

const std::vector<Conversation> kConversations = {{"Hello there", 30, 0.0, 0, 1},
                                                  {"What is 2+2?", 12, 1.0, 0, 7},
                                                  {"A much longer prompt, to prefill", 25, 0.8, 20, 3},
                                                  {"x", 40, 1.0, 0, 11},
                                                  {"Tell me a story", 5, 0.6, 5, 99},
                                                  {"Why?", 33, 1.2, 0, 42},
                                                  {"One more, to wait for a row", 18, 0.0, 0, 5}};

}  // namespace

TEST(KVCacheRows, LoadMoveAndPositions) {
  torch::NoGradGuard no_grad;
  KVCache src(1, 2, 8, 4, 3, torch::kCPU, torch::kFloat);
  src.k_cache.narrow(2, 0, 5).fill_(1.0);
  src.v_cache.narrow(2, 0, 5).fill_(2.0);
  src.advance(5);
  src.prev_embedding = torch::full({1, 1, 6}, 3.0);
  KVCache big(3, 2, 16, 4, 3, torch::kCPU, torch::kFloat);
  big.load_row(1, src);
  EXPECT_EQ(big.row_pos(1), 5);
  EXPECT_EQ(big.row_pos(0), 0);
  EXPECT_FALSE(big.uniform(3));
  EXPECT_TRUE(big.uniform(1));
  EXPECT_THROW(big.get_pos(), c10::Error);
  EXPECT_TRUE(torch::all(big.k_cache.select(1, 1).narrow(1, 0, 5) == 1.0).item<bool>());
  EXPECT_TRUE(torch::all(big.v_cache.select(1, 1).narrow(1, 0, 5) == 2.0).item<bool>());
  EXPECT_TRUE(torch::all(big.k_cache.select(1, 0) == 0.0).item<bool>());  // other rows untouched
  EXPECT_EQ(big.prev_embedding.sizes(), (std::vector<int64_t>{3, 1, 6}));
  EXPECT_EQ(big.prev_embedding[1].sum().item<float>(), 18.0f);
  big.move_row(1, 0);
  EXPECT_EQ(big.row_pos(0), 5);
  EXPECT_TRUE(torch::all(big.k_cache.select(1, 0).narrow(1, 0, 5) == 1.0).item<bool>());
  EXPECT_EQ(big.prev_embedding[0].sum().item<float>(), 18.0f);
  big.advance_rows(2, 3);
  EXPECT_EQ(big.row_pos(0), 8);
  EXPECT_EQ(big.row_pos(1), 8);
  EXPECT_EQ(big.row_pos(2), 0);
  KVCache tiny(1, 2, 4, 4, 3, torch::kCPU, torch::kFloat);
  EXPECT_THROW(tiny.load_row(0, src), c10::Error);  // 5 positions do not fit in 4
}

// Three conversations prefilled alone, then stepped together in one cache at different positions (in a cache with
// a spare row), must give what each gives stepped alone; then one leaves (the last row moves into its place) and
// the other two go on. The fused CPU step, the libtorch path (the one CUDA takes), and that path into a bf16 cache
// (CUDA's cache dtype) under an fp32 model.
TEST(KVCacheRows, RowsAtDifferentPositionsDecodeAsAlone) {
  torch::NoGradGuard no_grad;
  GPT m = random_model();
  for (auto [fused, dtype] : {std::pair{true, torch::kFloat}, {false, torch::kFloat}, {false, torch::kBFloat16}}) {
    m->fused_decode = fused;
    const std::vector<int64_t> lens = {3, 7, 11};
    std::vector<KVCache> solo;
    KVCache batch = cache_for(m, 4, 40, dtype);
    torch::manual_seed(17);
    for (size_t r = 0; r < lens.size(); ++r) {
      solo.push_back(cache_for(m, 1, 40, dtype));
      m->forward_last(torch::randint(m->config.vocab_size, {1, lens[r]}, torch::kLong), solo.back());
      batch.load_row(int64_t(r), solo.back());
    }
    std::vector<size_t> live = {0, 1, 2};  // batch row b holds solo[live[b]]
    for (int s = 0; s < 10; ++s) {
      if (s == 4) {  // the first conversation leaves: the last row moves into row 0
        batch.move_row(2, 0);
        live = {2, 1};
      }
      const int64_t n = int64_t(live.size());
      torch::Tensor next = torch::randint(m->config.vocab_size, {n, 1}, torch::kLong);
      if (fused) ASSERT_TRUE(decode_step_applies(*m, next, batch));
      torch::Tensor got = m->forward_last(next, batch);
      for (int64_t b = 0; b < n; ++b) {
        torch::Tensor want = m->forward_last(next.narrow(0, b, 1), solo[live[size_t(b)]]);
        EXPECT_LT(max_diff(got[b], want[0]), 2e-4)
            << "fused=" << fused << " dtype=" << dtype << " step " << s << " row " << b;
        EXPECT_EQ(batch.row_pos(b), solo[live[size_t(b)]].get_pos());
      }
    }
  }
  m->fused_decode = true;
}

// A prompt prefilled a few tokens at a time (continuing from the cache) gives the logits, cache and next steps of
// the prompt prefilled at once.
TEST(KVCacheRows, ChunkedPrefillEqualsOneShot) {
  torch::NoGradGuard no_grad;
  GPT m = random_model();
  torch::manual_seed(23);
  torch::Tensor ids = torch::randint(m->config.vocab_size, {1, 23}, torch::kLong);
  KVCache once = cache_for(m, 1, 30), chunked = cache_for(m, 1, 30);
  torch::Tensor want = m->forward_last(ids, once), got;
  for (int64_t start = 0; start < 23; start += 5)
    got = m->forward_last(ids.narrow(1, start, std::min<int64_t>(5, 23 - start)), chunked);
  EXPECT_LT(max_diff(got, want), 2e-4);
  EXPECT_EQ(chunked.get_pos(), 23);
  EXPECT_LT(max_diff(chunked.k_cache, once.k_cache), 1e-4);
  EXPECT_LT(max_diff(chunked.prev_embedding, once.prev_embedding), 1e-6);
  for (int s = 0; s < 4; ++s) {
    torch::Tensor next = torch::randint(m->config.vocab_size, {1, 1}, torch::kLong);
    EXPECT_LT(max_diff(m->forward_last(next, chunked), m->forward_last(next, once)), 2e-4) << "step " << s;
  }
}

TEST(BatchEngine, EachConversationEqualsDecodingAlone) {
  for (bool fused : {true, false}) {
    GPT m = random_model();
    m->fused_decode = fused;
    Engine engine(m, byte_tokenizer());
    std::vector<std::vector<int32_t>> want;
    for (const auto& c : kConversations)
      want.push_back(alone(engine, prompt(c.text), c.max_tokens, c.temperature, c.top_k, c.seed));
    // 7 conversations from 7 threads on 4 rows: some wait for a row, and rows join and leave at different steps.
    BatchEngine batcher(m, byte_tokenizer(), 4);
    std::vector<std::vector<int32_t>> got(kConversations.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kConversations.size(); ++i)
      threads.emplace_back([&, i] {
        const auto& c = kConversations[i];
        batcher.generate(prompt(c.text), c.max_tokens, c.temperature, c.top_k, c.seed, [&](int32_t t) {
          got[i].push_back(t);
          return true;
        });
      });
    for (auto& t : threads) t.join();
    std::set<size_t> lengths;
    for (size_t i = 0; i < kConversations.size(); ++i) {
      EXPECT_EQ(got[i], want[i]) << "fused=" << fused << " conversation " << i;
      lengths.insert(want[i].size());
    }
    EXPECT_GE(lengths.size(), 4u);  // the replies really end at different steps
    EXPECT_EQ(batcher.active(), 0);
  }
}

TEST(BatchEngine, CallerStoppingFreesItsRowAndOthersGoOn) {
  GPT m = random_model();
  Engine engine(m, byte_tokenizer());
  BatchEngine batcher(m, byte_tokenizer(), 2);
  const auto& keep = kConversations[3];  // 40 tokens at temperature 1
  std::vector<int32_t> want =
      alone(engine, prompt(keep.text), keep.max_tokens, keep.temperature, keep.top_k, keep.seed);
  std::vector<int32_t> got;
  std::thread other([&] {
    batcher.generate(prompt(keep.text), keep.max_tokens, keep.temperature, keep.top_k, keep.seed, [&](int32_t t) {
      got.push_back(t);
      return true;
    });
  });
  // A caller that leaves after three tokens, three times over: each time its row must be free again on return.
  for (int round = 0; round < 3; ++round) {
    int seen = 0;
    batcher.generate(prompt("forever"), 40, 0.0, 0, 0, [&](int32_t) { return ++seen < 3; });
    EXPECT_EQ(seen, 3);
    EXPECT_LE(batcher.active(), 1);
  }
  other.join();
  EXPECT_EQ(got, want);
  // A caller whose callback throws (a socket write that failed) leaves the same way, and gets the exception.
  auto throws = [](int32_t) -> bool { throw std::runtime_error("the client is gone"); };
  EXPECT_THROW(batcher.generate(prompt("forever"), 40, 0.0, 0, 0, throws), std::runtime_error);
  EXPECT_EQ(batcher.active(), 0);
}

// A long prompt joins a chunk per decode step while another conversation keeps decoding, and still gets the reply
// it gets alone. The other conversation must still be decoding when the long one arrives: it gets 200 steps of a
// model that cannot end its turn (no weight toward <|assistant_end|> or <|bos|>), against the 21 chunks.
TEST(BatchEngine, LongPromptIsPrefilledBetweenSteps) {
  GPTConfig cfg;
  cfg.sequence_len = 256;
  cfg.vocab_size = byte_tokenizer().get_vocab_size();
  cfg.n_layer = 4;
  cfg.n_head = cfg.n_kv_head = 4;
  cfg.n_embd = 256;
  torch::manual_seed(9);
  GPT m(cfg);
  m->init_weights();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.05);
    m->lm_head->weight.normal_(0, 0.5);
    for (const char* end : {"<|assistant_end|>", "<|bos|>"})
      m->lm_head->weight[byte_tokenizer().encode_special(end)].zero_();  // logit 0, below the best of 264 others
  }
  Engine engine(m, byte_tokenizer());
  BatchEngine batcher(m, byte_tokenizer(), 2, /*prefill_chunk=*/2);
  const std::vector<int32_t> long_prompt = prompt(std::string(39, 'a') + "?");
  ASSERT_EQ(long_prompt.size(), 41u);  // 21 chunks of 2 tokens
  std::promise<void> started;
  int first_len = 0;
  std::thread first([&] {
    batcher.generate(prompt("go"), 200, 0.0, 0, 0, [&](int32_t) {
      if (++first_len == 1) started.set_value();
      return true;
    });
  });
  started.get_future().wait();
  const int64_t steps_before = batcher.steps();
  int64_t steps_at_first_token = -1;
  std::vector<int32_t> got;
  batcher.generate(long_prompt, 20, 0.0, 0, 0, [&](int32_t t) {
    if (got.empty()) steps_at_first_token = batcher.steps();
    got.push_back(t);
    return true;
  });
  const bool first_still_running = batcher.active() == 1;
  first.join();
  ASSERT_EQ(first_len, 200);
  ASSERT_TRUE(first_still_running) << "the first conversation ended before the long prompt joined";
  // The other conversation was stepped between the chunks: at least 20 steps before the long prompt's first token
  // (prefilled at once, it would see only the few steps the decode thread ran before taking it up).
  EXPECT_GE(steps_at_first_token - steps_before, 20);
  EXPECT_EQ(got, alone(engine, long_prompt, 20, 0.0, 0, 0));
}

TEST(BatchEngine, BadRequestsAreErrors) {
  GPT m = random_model();
  BatchEngine batcher(m, byte_tokenizer(), 2);
  auto ignore = [](int32_t) { return true; };
  EXPECT_THROW(batcher.generate({}, 5, 0.0, 0, 0, ignore), Error);
  const int T = int(prompt("hi").size());
  EXPECT_THROW(batcher.generate(prompt("hi"), 64 - T + 1, 0.0, 0, 0, ignore), Error);  // one past the context
  EXPECT_THROW(batcher.generate(prompt("hi"), 5, -1.0, 0, 0, ignore), Error);
  // A prompt the model cannot run (a token id past the vocabulary) fails alone; the engine goes on serving.
  try {
    batcher.generate({byte_tokenizer().get_bos_token_id(), 100000}, 5, 0.0, 0, 0, ignore);
    ADD_FAILURE() << "an out-of-vocabulary prompt was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prefill failed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(batcher.active(), 0);
  int n = 0;
  batcher.generate(prompt("hi"), 0, 0.0, 0, 0, [&](int32_t) { return ++n, true; });
  EXPECT_EQ(n, 0);
  batcher.generate(prompt("hi"), -1, 0.0, 0, 0, [&](int32_t) { return ++n, true; });  // until the context is full
  EXPECT_GT(n, 0);
  EXPECT_LE(n, 64 - T);
}
