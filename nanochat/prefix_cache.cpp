// prefix_cache: see prefix_cache.h.
#include "nanochat/prefix_cache.h"

#include <algorithm>

namespace nanochat {

namespace {

int64_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int64_t cap) {
  const int64_t n = std::min<int64_t>({int64_t(a.size()), int64_t(b.size()), cap});
  int64_t i = 0;
  while (i < n && a[size_t(i)] == b[size_t(i)]) ++i;
  return i;
}

}  // namespace

PrefixCache::Hit PrefixCache::lookup(const std::vector<int32_t>& prompt, int64_t max_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!enabled()) return {};
  lookups_++;
  auto best = entries_.end();
  int64_t best_len = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const int64_t n = common_prefix(it->tokens, prompt, max_len);
    if (n > best_len) best = it, best_len = n;
  }
  if (best == entries_.end()) return {};
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  hits_++;
  tokens_saved_ += best_len;
  // Views, not copies: the caller copies them into its cache before the next insert could evict the entry (the
  // tensors stay alive as long as the views anyway).
  return {best_len, best->k.narrow(1, 0, best_len), best->v.narrow(1, 0, best_len)};
}

void PrefixCache::insert(const std::vector<int32_t>& tokens, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t T = k.size(1);
  TORCH_CHECK(T <= int64_t(tokens.size()) && v.sizes() == k.sizes(), "PrefixCache::insert: ", T,
              " positions of keys/values for ", tokens.size(), " tokens");
  if (!enabled() || T == 0) return;
  std::vector<int32_t> kept(tokens.begin(), tokens.begin() + T);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const int64_t n = common_prefix(it->tokens, kept, T);
    if (n == T) {  // already stored (as this or as part of a longer entry)
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
    if (n == int64_t(it->tokens.size())) {  // a prefix of the new entry: the new one answers for it
      bytes_ -= it->bytes();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  torch::NoGradGuard no_grad;
  Entry e{std::move(kept), k.clone(at::MemoryFormat::Contiguous), v.clone(at::MemoryFormat::Contiguous)};
  if (e.bytes() > budget_) return;
  bytes_ += e.bytes();
  entries_.push_front(std::move(e));
  evict_locked();
}

void PrefixCache::evict_locked() {
  while (bytes_ > budget_ && !entries_.empty()) {
    bytes_ -= entries_.back().bytes();
    entries_.pop_back();
  }
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {lookups_, hits_, tokens_saved_, int64_t(entries_.size()), bytes_, budget_};
}

}  // namespace nanochat
