// prefix_cache_stats: what a prefix cache (prefix_cache.h) reports — kept apart from it, without torch, because
// the web server (serve/chat_model.h) reports it for any model, the torch-free test model included.
#pragma once

#include <cstdint>

namespace nanochat {

struct PrefixCacheStats {
  int64_t lookups = 0, hits = 0, tokens_saved = 0;  // cumulative; tokens_saved sums the hits' reused tokens
  int64_t entries = 0, bytes = 0, budget_bytes = 0;
  PrefixCacheStats& operator+=(const PrefixCacheStats& o) {
    lookups += o.lookups, hits += o.hits, tokens_saved += o.tokens_saved;
    entries += o.entries, bytes += o.bytes, budget_bytes += o.budget_bytes;
    return *this;
  }
};

}  // namespace nanochat
