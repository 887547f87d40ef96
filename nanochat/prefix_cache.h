// prefix_cache: the KV rows of recent conversations, kept so that a chat's next request — which repeats the whole
// conversation so far — prefills only what is new (llama.cpp's cache_prompt). The batch engine (batch_engine.h)
// stores a conversation's rows when its prompt is in and again when its reply ends, and looks up the longest stored
// token prefix of each new prompt. Entries are evicted least recently used first to stay under a byte budget.
//
//   PrefixCache cache(/*budget_bytes=*/512 << 20);
//   auto hit = cache.lookup(prompt, /*max_len=*/prompt.size() - 1);   // hit.length tokens of hit.k/hit.v are reusable
//   cache.insert(tokens, k, v);   // k, v [L, T, Hkv, Dh]: the keys/values of tokens[0, T) (copied)
//
// An entry is a copy (the batch's rows are reused by other conversations at once), so storing costs one copy of
// the rows and a hit one more; both are small next to the prefill they save (a layer's matmuls per token).
// Only the keys and values are stored: the smear's previous embedding at any position is a function of the token
// there alone (the normalized token embedding), so the engine recomputes it. Thread-safe (one mutex); the engine
// calls it from its decode thread, the server reads stats() from any thread.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <vector>

#include <torch/torch.h>

#include "nanochat/prefix_cache_stats.h"

namespace nanochat {

class PrefixCache {
 public:
  // budget_bytes <= 0: the cache is off (lookups miss, inserts are dropped).
  explicit PrefixCache(int64_t budget_bytes) : budget_(std::max<int64_t>(0, budget_bytes)) {}

  struct Hit {
    int64_t length = 0;  // reusable leading tokens (0: a miss)
    torch::Tensor k, v;  // [L, length, Hkv, Dh] views of the entry's keys/values (undefined on a miss)
  };
  // The stored entry sharing the longest leading run of tokens with `prompt`, capped at max_len tokens (the engine
  // keeps at least one prompt token to run, for the next token's logits). Counts a lookup, and a hit when length > 0.
  Hit lookup(const std::vector<int32_t>& prompt, int64_t max_len);

  // Stores the keys/values k, v [L, T, Hkv, Dh] of tokens[0, T) (tokens.size() may exceed T: only T are kept).
  // Entries that are a prefix of this one are dropped (it answers every lookup they would); an entry that already
  // covers these tokens is only marked as recently used. Entries larger than the whole budget are not kept.
  void insert(const std::vector<int32_t>& tokens, const torch::Tensor& k, const torch::Tensor& v);

  PrefixCacheStats stats() const;
  bool enabled() const { return budget_ > 0; }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    torch::Tensor k, v;  // [L, tokens.size(), Hkv, Dh], contiguous
    int64_t bytes() const { return int64_t(k.nbytes() + v.nbytes()); }
  };
  void evict_locked();

  const int64_t budget_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first
  int64_t bytes_ = 0, lookups_ = 0, hits_ = 0, tokens_saved_ = 0;
};

}  // namespace nanochat
