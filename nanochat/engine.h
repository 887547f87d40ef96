// engine: fast inference for nanochat models (nanochat/engine.py) — a batch-1 prefill whose KV cache is then cloned
// into num_samples rows, top-k/temperature sampling with a seeded generator, and the calculator tool: when the model
// writes <|python_start|>expr<|python_end|>, the engine evaluates expr and forces
// <|output_start|>result<|output_end|> into that row before the model goes on.
//
//   Engine engine(model, tokenizer);
//   engine.generate(prompt_ids, /*num_samples=*/1, /*max_tokens=*/64, /*temperature=*/0.0, /*top_k=*/0, /*seed=*/42,
//                   [&](const std::vector<int32_t>& tokens, const std::vector<int32_t>& masks) {
//                     std::cout << tokenizer.decode({tokens[0]});   // one column per step, streaming
//                     return true;                                   // false stops generation (client left)
//                   });
//   auto [seqs, masks] = engine.generate_batch(prompt_ids, 4, 64, 1.0, 50, 42);  // prompt + completions
//
// Rows that finish (<|assistant_end|> or <|bos|>) keep being stepped until every row is done, as in Python;
// generate_batch drops what comes after. Continuous batching across requests is batch_engine.h.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "nanochat/gpt.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

// logits [B, V] -> next ids [B] (int64, on the logits' device). temperature 0 = argmax (top_k ignored);
// top_k > 0 samples among the k largest (k clamped to V). Temperatures below 1e-5 count as greedy, so a tiny
// temperature never divides logits into inf/NaN. One generator serves all rows and steps (determinism per seed).
torch::Tensor sample_next_token(const torch::Tensor& logits, torch::Generator& generator, double temperature,
                                int64_t top_k);

// A token's log-probability under log_softmax(logits) (the raw logits: before temperature and top-k) and the
// `top` most likely tokens, most likely first. Computed only for requests that ask for it (a pass over the vocabulary).
struct TokenLogprobs {
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};
TokenLogprobs token_logprobs(const torch::Tensor& logits_row, int32_t token, int top);

// A CPU generator seeded like torch.Generator().manual_seed(seed).
torch::Generator make_generator(uint64_t seed);

// One row's tool-use state machine. Each step takes the token the model sampled and returns the token to emit:
// a pending forced tool-output token (mask 0) if there is one, else the sampled token (mask 1). After
// <|python_start|> tokens are collected; at <|python_end|> the expression is evaluated by the calculator and
// <|output_start|> result <|output_end|> queued. <|assistant_end|> or <|bos|> complete the row.
class RowState {
 public:
  explicit RowState(const Tokenizer& tokenizer);
  std::pair<int32_t, int32_t> step(int32_t sampled);  // (token, mask)
  bool completed() const { return completed_; }

 private:
  const Tokenizer* tok_;
  int32_t python_start_, python_end_, output_start_, output_end_, assistant_end_, bos_;
  std::deque<int32_t> forced_;
  std::vector<int32_t> python_expr_;
  bool in_python_ = false;
  bool completed_ = false;
};

// An empty KV cache for `batch` rows of seq_len positions on the model's device, in nanochat's dtype (bf16 on
// CUDA, fp32 elsewhere).
KVCache make_kv_cache(const GPT& model, int64_t batch, int64_t seq_len);

class Engine {
 public:
  Engine(GPT model, const Tokenizer& tokenizer);

  // Called once per generated column: tokens[b] and masks[b] (1 = sampled, 0 = forced tool output) for every row.
  // Return false to stop early.
  using StepCallback = std::function<bool(const std::vector<int32_t>& tokens, const std::vector<int32_t>& masks)>;

  // max_tokens < 0 means "until the model's sequence length". Forced tokens count toward max_tokens.
  void generate(const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature, int64_t top_k,
                uint64_t seed, const StepCallback& on_step);
  // The same, and with top_logprobs >= 0 each column's log-probabilities too (logprobs[b] for row b; null when
  // top_logprobs < 0), under the logits the column's tokens were chosen from, forced tokens included.
  using LogprobStepCallback = std::function<bool(const std::vector<int32_t>& tokens, const std::vector<int32_t>& masks,
                                                 const std::vector<TokenLogprobs>* logprobs)>;
  void generate(const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature, int64_t top_k,
                uint64_t seed, int top_logprobs, const LogprobStepCallback& on_step);

  // Returns (sequences, masks): each row is the prompt followed by its completion, without the terminating token;
  // masks are 0 for the prompt and forced tokens, 1 for sampled tokens.
  std::pair<std::vector<std::vector<int32_t>>, std::vector<std::vector<int32_t>>> generate_batch(
      const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature, int64_t top_k,
      uint64_t seed);

  GPT& model() { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  GPT model_;
  const Tokenizer& tokenizer_;
  int32_t assistant_end_, bos_;
};

}  // namespace nanochat
