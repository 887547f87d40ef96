// Tests for nanochat/engine: the cases of nanochat's tests/test_engine.py (uniform-logit model, byte tokenizer),
// KV-cache generation against full recomputation, sampling edge cases and the calculator tool state machine.
#include <gtest/gtest.h>

#include <set>

#include "nanochat/common.h"
#include "tokenizer_test_util.h"
#include "nanochat/engine.h"

using namespace nanochat;

namespace {

using tok_test::byte_tokenizer;

GPT tiny_model(int64_t vocab, const std::string& pattern = "L", int64_t seq_len = 128) {
  GPTConfig c;
  c.sequence_len = seq_len;
  c.vocab_size = vocab;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.window_pattern = pattern;
  torch::manual_seed(7);
  GPT model(c);
  model->init_weights();
  return model;
}

// lm_head = 0 gives all-zero logits: the uniform mock model of test_engine.py.
GPT uniform_model() {
  GPT m = tiny_model(byte_tokenizer().get_vocab_size());
  torch::NoGradGuard ng;
  m->lm_head->weight.zero_();
  return m;
}

// A model whose lm_head is random, so greedy decoding is not trivially constant.
GPT random_model(const std::string& pattern) {
  GPT m = tiny_model(byte_tokenizer().get_vocab_size(), pattern, 64);
  torch::NoGradGuard ng;
  m->lm_head->weight.normal_(0, 0.5);
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.02);  // wake up the zero-initialized projections
  return m;
}

std::vector<int32_t> prompt() { return byte_tokenizer().encode("Hello world", "<|bos|>"); }

}  // namespace

TEST(Engine, KVCacheBasics) {
  KVCache cache(2, 4, 32, 8, 3, torch::kCPU, torch::kFloat32);
  EXPECT_EQ(cache.get_pos(), 0);
  EXPECT_EQ(cache.k_cache.sizes(), (std::vector<int64_t>{3, 2, 32, 4, 8}));
  cache.advance(10);
  EXPECT_EQ(cache.get_pos(), 10);
  cache.advance(5);
  EXPECT_EQ(cache.get_pos(), 15);
  cache.reset();
  EXPECT_EQ(cache.get_pos(), 0);
  auto [k, v] = cache.layer(1);
  EXPECT_EQ(k.sizes(), (std::vector<int64_t>{2, 32, 4, 8}));
}

TEST(Engine, PrefillCopiesRowsAndPosition) {
  KVCache small(1, 4, 32, 8, 2, torch::kCPU, torch::kFloat32);
  small.k_cache.narrow(2, 0, 16).fill_(1.0);
  small.v_cache.narrow(2, 0, 16).fill_(2.0);
  small.advance(16);
  KVCache big(3, 4, 64, 8, 2, torch::kCPU, torch::kFloat32);
  big.prefill(small);
  EXPECT_EQ(big.get_pos(), 16);
  EXPECT_TRUE(torch::all(big.k_cache.narrow(2, 0, 16) == 1.0).item<bool>());
  EXPECT_TRUE(torch::all(big.v_cache.narrow(2, 0, 16) == 2.0).item<bool>());
  EXPECT_TRUE(torch::all(big.k_cache.narrow(2, 16, 48) == 0.0).item<bool>());
}

TEST(Engine, FirstTokenIsSampledPerRow) {
  Engine engine(uniform_model(), byte_tokenizer());
  auto [seqs, masks] = engine.generate_batch(prompt(), 16, 1, 1.0, 0, 42);
  std::set<int32_t> firsts;
  for (auto& s : seqs)
    if (s.size() > prompt().size()) firsts.insert(s[prompt().size()]);
  EXPECT_GT(firsts.size(), 1u);
}

TEST(Engine, SameSeedSameOutput) {
  Engine engine(uniform_model(), byte_tokenizer());
  for (uint64_t seed : {1, 42, 123, 999}) {
    auto a = engine.generate_batch(prompt(), 1, 16, 1.0, 0, seed).first;
    for (int rep = 0; rep < 2; ++rep) EXPECT_EQ(engine.generate_batch(prompt(), 1, 16, 1.0, 0, seed).first, a);
  }
}

TEST(Engine, TemperatureZeroIgnoresSeed) {
  Engine engine(random_model("L"), byte_tokenizer());
  auto a = engine.generate_batch(prompt(), 1, 16, 0.0, 0, 1).first;
  for (uint64_t seed : {42, 123, 999}) EXPECT_EQ(engine.generate_batch(prompt(), 1, 16, 0.0, 0, seed).first, a);
}

TEST(Engine, MaxTokensRespected) {
  Engine engine(uniform_model(), byte_tokenizer());
  for (int max_tokens : {1, 4, 16, 64}) {
    int steps = 0;
    engine.generate(prompt(), 1, max_tokens, 1.0, 0, 0, [&](auto&, auto&) { return ++steps, true; });
    EXPECT_LE(steps, max_tokens);
    auto seqs = engine.generate_batch(prompt(), 1, max_tokens, 1.0, 0, 0).first;
    EXPECT_LE(seqs[0].size(), prompt().size() + size_t(max_tokens));
  }
}

TEST(Engine, NumSamplesRows) {
  Engine engine(uniform_model(), byte_tokenizer());
  for (int n : {1, 4, 16, 64}) EXPECT_EQ(engine.generate_batch(prompt(), n, 8, 1.0, 0, 0).first.size(), size_t(n));
}

TEST(Engine, DifferentSeedsVary) {
  Engine engine(uniform_model(), byte_tokenizer());
  std::set<std::vector<int32_t>> outs;
  for (uint64_t seed = 1000; seed < 1010; ++seed)
    outs.insert(engine.generate_batch(prompt(), 1, 8, 1.0, 0, seed).first[0]);
  EXPECT_GT(outs.size(), 1u);
}

TEST(Engine, TinyTemperatureAndHugeTopKAreSafe) {
  Engine engine(random_model("L"), byte_tokenizer());
  auto greedy = engine.generate_batch(prompt(), 1, 8, 0.0, 0, 0).first;
  EXPECT_EQ(engine.generate_batch(prompt(), 1, 8, 1e-9, 0, 0).first, greedy);
  auto wide = engine.generate_batch(prompt(), 2, 8, 1.0, 100000, 0).first;  // top_k > vocab is clamped
  EXPECT_EQ(wide.size(), 2u);
  torch::Generator gen = make_generator(0);
  EXPECT_THROW(sample_next_token(torch::zeros({1, 5}), gen, -0.5, 0), Error);
}

// Greedy decoding through the KV cache must equal re-running the full sequence every step.
TEST(Engine, KVCacheGreedyEqualsFullRecompute) {
  for (const std::string pattern : {"L", "SSSL"}) {
    GPT model = random_model(pattern);
    std::vector<int32_t> p = prompt();
    std::vector<int64_t> p64(p.begin(), p.end());
    std::vector<int64_t> naive = model->generate(p64, 40, 0.0);
    Engine engine(model, byte_tokenizer());
    std::vector<int32_t> got;
    engine.generate(p, 1, 40, 0.0, 0, 0, [&](const std::vector<int32_t>& col, auto&) {
      got.push_back(col[0]);
      return true;
    });
    ASSERT_EQ(got.size(), naive.size()) << pattern;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], naive[i]) << pattern << " step " << i;
  }
}

// The calculator state machine: the model "writes" <|python_start|>12/60<|python_end|>, then the engine forces
// <|output_start|>0.2<|output_end|> whatever the model samples, with mask 0; then sampling resumes.
TEST(Engine, CalculatorToolForcesOutput) {
  const Tokenizer& tok = byte_tokenizer();
  RowState row(tok);
  std::vector<int32_t> written = {tok.encode_special("<|python_start|>")};
  for (int32_t t : tok.encode("12/60")) written.push_back(t);
  written.push_back(tok.encode_special("<|python_end|>"));
  for (int32_t t : written) EXPECT_EQ(row.step(t), std::make_pair(t, 1));
  std::vector<int32_t> expected = {tok.encode_special("<|output_start|>")};
  for (int32_t t : tok.encode("0.2")) expected.push_back(t);
  expected.push_back(tok.encode_special("<|output_end|>"));
  for (int32_t t : expected) EXPECT_EQ(row.step('x'), std::make_pair(t, 0));
  EXPECT_EQ(row.step('y'), std::make_pair(int32_t('y'), 1));
  EXPECT_FALSE(row.completed());
  row.step(tok.encode_special("<|assistant_end|>"));
  EXPECT_TRUE(row.completed());
}

TEST(Engine, CalculatorRejectionForcesNothing) {
  const Tokenizer& tok = byte_tokenizer();
  RowState row(tok);
  row.step(tok.encode_special("<|python_start|>"));
  for (int32_t t : tok.encode("2**99999")) row.step(t);
  row.step(tok.encode_special("<|python_end|>"));
  EXPECT_EQ(row.step('z'), std::make_pair(int32_t('z'), 1));
}
