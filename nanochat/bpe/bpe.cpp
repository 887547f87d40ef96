// bpe: see bpe.h.
#include "nanochat/bpe/bpe.h"

#include <algorithm>
#include <functional>
#include <limits>

#include "nanochat/common.h"

namespace nanochat {

uint64_t RankMap::hash(std::string_view key) {
  // 8 bytes at a time, multiply-xorshift mixing; plenty for short token strings.
  const uint64_t k = 0x9E3779B97F4A7C15ULL;
  uint64_t h = key.size() * k;
  const char* p = key.data();
  size_t n = key.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 31);
}

void RankMap::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.rank < 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].rank >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void RankMap::insert(std::string_view key, int32_t rank) {
  if (rank < 0) fail("token rank must be non-negative, got {}", rank);
  if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
  uint64_t h = hash(key);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.rank < 0) {
      s.hash = h;
      s.off = uint32_t(arena_.size());
      s.len = uint32_t(key.size());
      s.rank = rank;
      arena_.append(key);
      count_++;
      return;
    }
    if (s.hash == h && s.len == key.size() && std::memcmp(arena_.data() + s.off, key.data(), key.size()) == 0) {
      s.rank = rank;
      return;
    }
  }
}

namespace {

constexpr int32_t kNone = std::numeric_limits<int32_t>::max();

[[noreturn]] void missing_byte(std::string_view piece) {
  fail("the vocabulary has no token for byte 0x{:02x}; every single byte needs a rank", (unsigned char)piece[0]);
}

void emit_parts(const RankMap& ranks, std::string_view piece, const uint32_t* pos, size_t m,
                std::vector<int32_t>& out) {
  for (size_t i = 0; i < m; i++) {
    int32_t r = ranks.find(piece.substr(pos[i], pos[i + 1] - pos[i]));
    if (r < 0) missing_byte(piece.substr(pos[i]));
    out.push_back(r);
  }
}

// tiktoken's algorithm: parts = byte boundaries; rank[i] = rank of parts i and i+1 joined. Linear scan for the
// minimum each round, O(n^2) in the worst case but fastest for word-sized pieces.
void bpe_small(const RankMap& ranks, std::string_view piece, std::vector<int32_t>& out) {
  constexpr size_t kMax = 128;
  uint32_t pos[kMax + 1];
  int32_t rk[kMax];
  size_t m = piece.size();  // number of parts
  for (size_t i = 0; i <= m; i++) pos[i] = uint32_t(i);
  auto pair_rank = [&](size_t i) -> int32_t {  // rank of parts i, i+1 joined
    if (i + 2 > m) return kNone;
    int32_t r = ranks.find(piece.substr(pos[i], pos[i + 2] - pos[i]));
    return r < 0 ? kNone : r;
  };
  for (size_t i = 0; i + 1 < m; i++) rk[i] = pair_rank(i);
  while (m > 1) {
    int32_t best = kNone;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < m; i++)
      if (rk[i] < best) best = rk[i], bi = i;
    if (best == kNone) break;
    // Merge parts bi and bi+1: drop boundary bi+1.
    for (size_t j = bi + 1; j < m; j++) pos[j] = pos[j + 1];
    for (size_t j = bi + 1; j + 1 < m - 1; j++) rk[j] = rk[j + 1];
    m--;
    rk[bi] = pair_rank(bi);
    if (bi > 0) rk[bi - 1] = pair_rank(bi - 1);
  }
  emit_parts(ranks, piece, pos, m, out);
}

// Same result for long pieces: parts in a linked list, candidate merges in a min-heap of (rank << 32 | start);
// the start offset breaks ties leftmost exactly as the linear scan does. A popped candidate is current when its
// part is alive and the rank of that part joined with its successor is still the popped rank (distinct byte
// strings never share a rank), so stale entries are recognized without storing anything else.
void bpe_large(const RankMap& ranks, std::string_view piece, std::vector<int32_t>& out) {
  const uint32_t n = uint32_t(piece.size());
  std::vector<uint32_t> next(n), prev(n);
  std::vector<int32_t> cur(n, kNone);  // rank of part i joined with its successor (kNone: none, or i is dead)
  for (uint32_t i = 0; i < n; i++) {
    next[i] = i + 1;  // n means "end"; the part starting at i ends at next[i]
    prev[i] = i == 0 ? n : i - 1;
  }
  auto pair_rank = [&](uint32_t i) -> int32_t {
    uint32_t j = next[i];
    if (j >= n) return kNone;
    int32_t r = ranks.find(piece.substr(i, next[j] - i));
    return r < 0 ? kNone : r;
  };
  std::vector<uint64_t> heap;
  heap.reserve(n);
  for (uint32_t i = 0; i + 1 < n; i++) {
    cur[i] = pair_rank(i);
    if (cur[i] != kNone) heap.push_back((uint64_t(uint32_t(cur[i])) << 32) | i);
  }
  auto later = std::greater<uint64_t>();
  std::make_heap(heap.begin(), heap.end(), later);
  auto push = [&](uint32_t i) {
    cur[i] = pair_rank(i);
    if (cur[i] == kNone) return;
    heap.push_back((uint64_t(uint32_t(cur[i])) << 32) | i);
    std::push_heap(heap.begin(), heap.end(), later);
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    uint64_t top = heap.back();
    heap.pop_back();
    uint32_t i = uint32_t(top & 0xFFFFFFFFu);
    if (cur[i] != int32_t(top >> 32)) continue;  // stale
    uint32_t j = next[i];
    cur[j] = kNone;  // j is merged into i
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    push(i);
    if (i != 0) push(prev[i]);
  }
  for (uint32_t i = 0; i < n; i = next[i]) {
    int32_t r = ranks.find(piece.substr(i, next[i] - i));
    if (r < 0) missing_byte(piece.substr(i));
    out.push_back(r);
  }
}

}  // namespace

void bpe_encode(const RankMap& ranks, std::string_view piece, std::vector<int32_t>& out) {
  if (piece.empty()) return;
  int32_t whole = ranks.find(piece);
  if (whole >= 0) {
    out.push_back(whole);
    return;
  }
  if (piece.size() <= 128)
    bpe_small(ranks, piece, out);
  else
    bpe_large(ranks, piece, out);
}

}  // namespace nanochat
