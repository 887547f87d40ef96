// batch_engine: continuous batching — several conversations decoded together in one batch on one model replica,
// each joining and leaving between decode steps. chat_web's workers use it when --max-batch > 1.
//
//   BatchEngine batcher(model, tokenizer, /*max_batch=*/8);
//   // from any number of threads at once; each call blocks until its reply is done:
//   batcher.generate(prompt_ids, /*max_tokens=*/64, /*temperature=*/0.8, /*top_k=*/50, /*seed=*/42,
//                    [&](int32_t token) { std::cout << tokenizer.decode({token}); return true; });  // false: stop
//
// A decode thread of its own owns the model and a KV cache of max_batch rows, one conversation per row, each at
// its own position. Between steps it admits waiting conversations (a batch-1 prefill copied into a free row; a
// prompt longer than prefill_chunk tokens is prefilled one chunk per step, so the others keep streaming), then samples
// every row's next token, hands each to its caller's thread (so a slow client never holds up the batch), drops the rows
// that ended (assistant end, bos, max_tokens, or the caller returned false) by moving the last row into the hole, and
// runs one batched forward for the rest. A decode step at batch 8 costs little more than at batch 1 on a CPU (the
// weights are read once per step either way), so serving eight conversations together gives several times the tokens
// per second of serving them in turn.
//
// Each conversation gets what Engine::generate(prompt, /*num_samples=*/1, ...) would give it alone: the same
// prefill, a generator of its own seeded with its seed, the same tool-use state machine and stops. Only the fp32
// summation order differs: of the batched matmuls past 4 rows, and of a prompt prefilled in several chunks
// (tests/unit/test_torch_batch_engine.cpp).
//
// With a prefix cache (prefix_cache_bytes > 0, prefix_cache.h), each prompt's keys and values are stored once it is
// prefilled and again, with the reply, when the conversation ends; a new prompt starts from the longest stored
// prefix and prefills only the rest (a chat's next turn repeats the whole conversation). The reused rows were
// computed by other passes (a decode step, other chunk boundaries), so a reply with the cache equals one without it
// up to fp32 summation order — token for token on the fixture model (tests/unit/test_torch_prefix_cache.cpp).
// Not covered: several samples per request.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nanochat/engine.h"
#include "nanochat/prefix_cache.h"

namespace nanochat {

class BatchEngine {
 public:
  // prefill_chunk: prompt tokens prefilled per decode step while other conversations decode (see loop()).
  static constexpr int64_t kPrefillChunk = 128;
  // prefix_cache_bytes: the prefix cache's budget (0: no cache).
  BatchEngine(GPT model, const Tokenizer& tokenizer, int max_batch, int64_t prefill_chunk = kPrefillChunk,
              int64_t prefix_cache_bytes = 0);
  ~BatchEngine();  // ends conversations still running with an error, then joins the decode thread
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // Generates up to max_tokens tokens after prompt (max_tokens < 0: until the model's sequence length), calling
  // on_token on the calling thread for each one, forced tool-output tokens and the final <|assistant_end|> included
  // (as Engine::generate does). Returns when the reply is done or on_token returned false (or threw, which is
  // rethrown); either way the conversation has left the batch by then. Throws Error for bad
  // arguments (an empty prompt, prompt + max_tokens beyond the model's context) and when decoding failed.
  void generate(const std::vector<int32_t>& prompt, int max_tokens, double temperature, int64_t top_k, uint64_t seed,
                const std::function<bool(int32_t token)>& on_token);
  // The same, and with top_logprobs >= 0 each token's log-probabilities (engine.h token_logprobs; null otherwise).
  void generate(const std::vector<int32_t>& prompt, int max_tokens, double temperature, int64_t top_k, uint64_t seed,
                int top_logprobs, const std::function<bool(int32_t token, const TokenLogprobs* logprobs)>& on_token);

  int max_batch() const { return int(cache_.batch_size()); }
  // Memory the batch's KV cache takes (it holds max_batch full contexts from the start).
  int64_t kv_cache_bytes() const { return int64_t(cache_.k_cache.nbytes() + cache_.v_cache.nbytes()); }
  // Conversations in the decode batch right now, and decode steps run so far (for tests and stats).
  int active() const;
  int64_t steps() const;
  // Lookups, hits, prompt tokens not prefilled thanks to the prefix cache, and its size.
  PrefixCacheStats prefix_cache_stats() const { return prefix_cache_.stats(); }

 private:
  struct Request;
  void loop();
  void prefill_some();
  void step();
  void finish(Request& r, const std::string& error = {});
  void set_active();               // publishes rows_.size() to active()
  void start_prefill(Request& r);  // the prompt's batch-1 cache, from the longest cached prefix when there is one
  void remember_row(const Request& r, int64_t row);  // stores row's keys/values in the prefix cache

  GPT model_;
  const Tokenizer& tokenizer_;
  KVCache cache_;  // rows [0, rows_.size()) are live conversations
  const int64_t prefill_chunk_;
  PrefixCache prefix_cache_;
  std::vector<std::shared_ptr<Request>> rows_;    // decode thread only: rows_[b] lives in cache row b
  std::deque<std::shared_ptr<Request>> joining_;  // decode thread only: prompts being prefilled, oldest first
  mutable std::mutex mu_;                         // guards pending_, n_active_, n_steps_, quit_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> pending_;  // waiting for a row
  int n_active_ = 0;
  int64_t n_steps_ = 0;
  bool quit_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace nanochat
