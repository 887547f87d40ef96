// chat_model: the one interface the web chat server (chat_server.h) needs from a model — a tokenizer plus a
// streaming sampler. The real implementation wraps the tokenizer and the inference engine (engine.h); the tests
// use a small byte-level mock (tests/http/mock_chat_model.h). The server owns one ChatModel per worker (a model
// replica, e.g. one per GPU) and calls generate() on a replica from at most max_batch() threads at once.
//
// Contract, in short:
//   - encode(text)        ordinary text -> ids. Special-token text such as "<|assistant_end|>" inside user content
//                         is plain text here (tiktoken's encode_ordinary): it must never become a special id.
//   - decode(ids)         ids -> raw UTF-8 bytes, with NO replacement of invalid/incomplete sequences, and
//                         decode(a ++ b) == decode(a) + decode(b) (true of byte-level BPE). The server decodes one
//                         token at a time and holds back bytes of a character split across tokens (sse.h).
//                         A special id decodes to its literal name, e.g. "<|python_start|>".
//   - special_id(name)    the id of a special token by its literal name ("<|bos|>", "<|user_start|>", ...).
//   - sequence_len()      the model's context length; the server refuses prompt + max_tokens beyond it.
//   - generate(...)       samples up to params.max_tokens tokens after `prompt` (Engine.generate with
//                         num_samples=1, nanochat/engine.py Engine.generate), calling on_token(id, logprob) for each
//                         one as soon as it is sampled, forced tool tokens included. logprob is null unless
//                         params.top_logprobs >= 0; then it is the token's log-probability under the model's
//                         distribution at that step (log_softmax of the raw logits, before temperature and top-k) and
//                         the top_logprobs most likely tokens. If on_token returns false, stop at once (the client left
//                         or the server is stopping). Returns when done. May throw std::exception on failure; the
//                         server reports it to that request only and keeps the replica. A request for n choices calls
//                         generate n times (seeds seed, seed+1, ...), at once on as many slots as it was given.
//   - device()            a label for /stats, e.g. "cuda:0" or "cpu".
//   - max_batch()         how many conversations the replica decodes together (continuous batching). With N > 1,
//                         generate() may be called by up to N threads at once on this replica, each call one
//                         conversation: the replica batches those calls itself (it runs its own decode thread).
//                         One call's on_token is never run twice at once; best on the thread that called generate,
//                         since on_token writes to that client's socket and a slow client should stall only its
//                         own conversation. With 1 (the default), generate is called by one thread at a time, as
//                         it always was (the worker's own thread).
// encode/decode/special_id/sequence_len/device/max_batch/prefix_cache_stats must be safe to call from any thread at any
// time (they are read-only).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/prefix_cache_stats.h"

namespace nanochat {

struct SamplingParams {
  double temperature = 0.8;  // 0 => greedy (argmax)
  int top_k = 50;            // 0 => no top-k filtering
  int max_tokens = 512;      // stop after this many sampled tokens
  uint64_t seed = 42;        // one RNG per request, seeded with this
  // -1: no log-probabilities (nothing computed). 0..20: report each token's log-probability and this many of the
  // most likely tokens at its step (OpenAI's logprobs/top_logprobs).
  int top_logprobs = -1;
};

// One generated token's log-probabilities (see generate()).
struct TokenLogprob {
  float logprob = 0;                       // of the token itself
  std::vector<std::pair<int, float>> top;  // (id, logprob) of the most likely tokens, most likely first
};

// Called for each generated token; logprob is null unless SamplingParams::top_logprobs >= 0. false = stop.
using TokenCallback = std::function<bool(int token, const TokenLogprob* logprob)>;

class ChatModel {
 public:
  virtual ~ChatModel() = default;

  virtual std::vector<int> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const int> ids) const = 0;
  virtual int special_id(std::string_view name) const = 0;
  virtual int sequence_len() const = 0;
  virtual std::string device() const = 0;
  // Conversations generate() serves at once on this replica (see above); the server gives each worker this many
  // slots. Constant for the replica's lifetime.
  virtual int max_batch() const { return 1; }
  // The replica's prefix cache (KV rows of recent conversations, reused by the next turn); all zero without one.
  virtual PrefixCacheStats prefix_cache_stats() const { return {}; }

  virtual void generate(const std::vector<int>& prompt, const SamplingParams& params,
                        const TokenCallback& on_token) = 0;
};

}  // namespace nanochat
