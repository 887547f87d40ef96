// decode_step (nanochat/decode) against GPT::forward's libtorch path, step by step: logits, the KV cache and the
// smear's previous embedding, for batch 1 to 9 (both matmul kernels), GQA, value-embedding layers, sliding
// windows that cut off early keys, and non-zero smear/backout. Also when the fused path must step aside.
#include <gtest/gtest.h>

#include "nanochat/cpu/decode.h"
#include "nanochat/gpt.h"
#include "nanochat/cpu/small_linear.h"
#include "model_test_util.h"

using namespace nanochat;

namespace {

// Depth 3 (value embeddings on layers 0 and 2), 4 query heads over 2 kv heads, head_dim 16 (a 16-lane vector).
GPT random_model(int64_t head_dim = 16) {
  GPT m = model_test::small_random_gpt(/*vocab_size=*/200, /*seed=*/3, head_dim);  // vocab padded to 256: the crop too
  m->window_sizes[0] = {5, 0};  // short enough that decoding below slides past it
  return m;
}

float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

// Prefills a prompt of B rows, then decodes `steps` tokens through both paths, comparing everything each step.
void expect_paths_agree(GPT& model, int64_t B, int64_t prompt_len, int64_t steps) {
  torch::NoGradGuard no_grad;
  const auto& c = model->config;
  auto make_cache = [&] {
    return KVCache(B, c.n_kv_head, prompt_len + steps, c.n_embd / c.n_head, c.n_layer, torch::kCPU, torch::kFloat);
  };
  KVCache fused = make_cache(), plain = make_cache();
  torch::manual_seed(11);
  torch::Tensor ids = torch::randint(c.vocab_size, {B, prompt_len}, torch::kLong);
  model->fused_decode = false;
  torch::Tensor logits_plain = model->forward_last(ids, plain);
  torch::Tensor logits_fused = model->forward_last(ids, fused);  // T > 1: both take the generic path
  ASSERT_EQ(max_diff(logits_plain, logits_fused), 0.0f);
  for (int64_t s = 0; s < steps; ++s) {
    // A column of a wider tensor, as callers slice it: strided when B > 1.
    torch::Tensor next = torch::randint(c.vocab_size, {B, 3}, torch::kLong).narrow(1, 1, 1);
    model->fused_decode = true;
    ASSERT_TRUE(decode_step_applies(*model, next, fused));
    logits_fused = model->forward_last(next, fused);
    model->fused_decode = false;
    ASSERT_FALSE(decode_step_applies(*model, next, plain));
    logits_plain = model->forward_last(next, plain);
    ASSERT_EQ(logits_fused.sizes(), (std::vector<int64_t>{B, c.vocab_size}));
    // fp32 summation order only: logits are softcapped to ±15, so an absolute bound is meaningful.
    EXPECT_LT(max_diff(logits_fused, logits_plain), 2e-4) << "B=" << B << " step " << s;
    EXPECT_EQ(fused.get_pos(), plain.get_pos());
    EXPECT_LT(max_diff(fused.k_cache, plain.k_cache), 1e-4) << "B=" << B << " step " << s;
    EXPECT_LT(max_diff(fused.v_cache, plain.v_cache), 1e-4) << "B=" << B << " step " << s;
    EXPECT_LT(max_diff(fused.prev_embedding, plain.prev_embedding.expand_as(fused.prev_embedding)), 1e-5);
  }
  model->fused_decode = true;
}

}  // namespace

TEST(Decode, EqualsGenericPathBatch1) {
  GPT m = random_model();
  expect_paths_agree(m, 1, 7, 12);
}

TEST(Decode, EqualsGenericPathEveryBatchSize) {
  GPT m = random_model();
  for (int64_t B = 2; B <= kSmallLinearMaxRows; ++B) expect_paths_agree(m, B, 4, 9);       // the streaming kernel
  for (int64_t B : {kSmallLinearMaxRows + 1, int64_t{9}}) expect_paths_agree(m, B, 4, 9);  // BLAS gemm
}

TEST(Decode, HeadDimWithVectorTail) {
  GPT m = random_model(/*head_dim=*/10);  // 10 = no full 16-lane vector: the scalar tails do all the work
  expect_paths_agree(m, 2, 3, 8);
}

TEST(Decode, FirstTokenWithoutPrefill) {
  // A one-token prompt straight into an empty cache: no previous embedding, so no smear.
  torch::NoGradGuard no_grad;
  GPT m = random_model();
  const auto& c = m->config;
  KVCache fused(1, c.n_kv_head, 4, c.n_embd / c.n_head, c.n_layer, torch::kCPU, torch::kFloat);
  KVCache plain(1, c.n_kv_head, 4, c.n_embd / c.n_head, c.n_layer, torch::kCPU, torch::kFloat);
  torch::Tensor tok = torch::full({1, 1}, 42, torch::kLong);
  ASSERT_TRUE(decode_step_applies(*m, tok, fused));
  torch::Tensor a = m->forward_last(tok, fused);
  m->fused_decode = false;
  torch::Tensor b = m->forward_last(tok, plain);
  EXPECT_LT(max_diff(a, b), 2e-4);
  EXPECT_EQ(fused.get_pos(), 1);
}

TEST(Decode, StepsAsideWhenItDoesNotApply) {
  GPT m = random_model();
  const auto& c = m->config;
  const int64_t Dh = c.n_embd / c.n_head;
  torch::Tensor one = torch::zeros({1, 1}, torch::kLong);
  KVCache cache(1, c.n_kv_head, 4, Dh, c.n_layer, torch::kCPU, torch::kFloat);
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(decode_step_applies(*m, one, cache));
    EXPECT_FALSE(decode_step_applies(*m, torch::zeros({1, 2}, torch::kLong), cache));  // prefill
    EXPECT_FALSE(decode_step_applies(*m, torch::zeros({1, 1}, torch::kInt), cache));
    EXPECT_FALSE(decode_step_applies(*m, torch::zeros({2, 1}, torch::kLong), cache));  // batch mismatch
    KVCache bf16(1, c.n_kv_head, 4, Dh, c.n_layer, torch::kCPU, torch::kBFloat16);
    EXPECT_FALSE(decode_step_applies(*m, one, bf16));
    KVCache full(1, c.n_kv_head, 4, Dh, c.n_layer, torch::kCPU, torch::kFloat);
    full.advance(4);
    EXPECT_FALSE(decode_step_applies(*m, one, full));  // no room: the generic path reports it
    m->fused_decode = false;
    EXPECT_FALSE(decode_step_applies(*m, one, cache));
    m->fused_decode = true;
  }
  EXPECT_FALSE(decode_step_applies(*m, one, cache));  // gradients recorded
}
