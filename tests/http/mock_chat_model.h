// mock_chat_model: a tiny, deterministic stand-in for a real model, for testing the web server only (never shipped
// in the nanochat program). Byte-level tokenizer: ids 0..255 are the bytes, then nanochat's 9 special tokens
// (<|bos|> = 256 ... <|output_end|> = 264), so "<|bos|>" typed by a user encodes as 7 plain bytes.
// generate() checks the prompt is shaped as the server must build it, then replies byte by byte — so multi-byte
// characters (🦙 = F0 9F A6 99, 你好) are always split across tokens — and ends with <|assistant_end|>:
//   last user message "forever..."  -> "🦙 llama " repeated until max_tokens (or until cancelled)
//   anything else                   -> "Hello 🦙 你好! You said: <message>" (+ " #<n>" from the seed if temperature
//   > 0)
// A plain prompt (<|bos|> + text, no chat template: POST /v1/completions) gets the same reply for the whole text,
// ended with <|bos|> as a base model ends a document. With params.top_logprobs >= 0 every token gets scripted
// log-probabilities (see mock_logprob): itself at log(1/2), then byte (token + j) % 256 at log(1/2^(j+1)).
// Knobs: a delay per token (a decode step), failures injected on chosen generate() calls counted across all
// replicas sharing `calls` (they throw after three tokens), and max_batch: how many generate() calls the replica
// takes at once. Concurrent calls simply run side by side (each sleeps its own delay, as in one batched step); one
// call more than max_batch at once throws, so a server that overfills a replica fails its tests.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "nanochat/serve/chat_model.h"

namespace nanochat {

struct MockOptions {
  int sequence_len = 1024;
  int delay_ms = 0;          // per generated token
  int max_batch = 1;         // generate() calls served at once (the server's slots for this replica)
  std::vector<int> fail_on;  // 1-based generate() calls that throw (after three tokens)
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  std::string device = "mock";
};

class MockChatModel : public ChatModel {
 public:
  explicit MockChatModel(MockOptions opt) : opt_(std::move(opt)) {}

  std::vector<int> encode(std::string_view text) const override;
  std::string decode(std::span<const int> ids) const override;
  int special_id(std::string_view name) const override;
  int sequence_len() const override { return opt_.sequence_len; }
  std::string device() const override { return opt_.device; }
  int max_batch() const override { return opt_.max_batch; }
  void generate(const std::vector<int>& prompt, const SamplingParams& params, const TokenCallback& on_token) override;
  // The log-probabilities the mock reports for token with top alternatives.
  static TokenLogprob mock_logprob(int token, int top);

  // The reply generate() would give (its bytes, before <|assistant_end|>), for tests to compare with.
  static std::string reply_for(std::string_view last_user_message, const SamplingParams& params);

 private:
  // Replies to `said` (its script above), ending with end_token.
  void reply(const std::string& said, bool forever, int end_token, const SamplingParams& params,
             const TokenCallback& on_token);
  MockOptions opt_;
  std::atomic<int> running_{0};  // generate() calls running now
};

}  // namespace nanochat
