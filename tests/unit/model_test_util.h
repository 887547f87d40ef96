// Shared helper for the model tests (decode, batch engine, packed weights): a small random GPT in which every term
// of a decode step contributes, so a path that drops or reorders one shows in the logits.
#pragma once

#include <torch/torch.h>

#include "nanochat/gpt.h"

namespace model_test {

// Depth 3 (value embeddings on layers 0 and 2), 4 query heads over 2 kv heads, n_embd = 4 · head_dim, windows "SL",
// context 64. Every parameter is jittered (init leaves some at zero or closed), smear_lambda 0.7, backout_lambda 0.3.
inline nanochat::GPT small_random_gpt(int64_t vocab_size, uint64_t seed, int64_t head_dim = 16) {
  nanochat::GPTConfig c;
  c.sequence_len = 64;
  c.vocab_size = vocab_size;
  c.n_layer = 3;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 4 * head_dim;
  c.window_pattern = "SL";
  torch::manual_seed(seed);
  nanochat::GPT m(c);
  m->init_weights();
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.05);
  m->smear_lambda.fill_(0.7);
  m->backout_lambda.fill_(0.3);
  return m;
}

}  // namespace model_test
