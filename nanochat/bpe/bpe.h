// bpe: the encoding half of byte-level BPE with tiktoken's exact semantics.
//   RankMap ranks;  ranks.insert(bytes, rank);  ranks.find(bytes) -> rank or -1
//   bpe_encode(ranks, piece, out)   appends the ids of one pre-tokenized piece
// Semantics: if the whole piece is a token, that id; otherwise start from single bytes and repeatedly merge the
// adjacent pair whose concatenation has the lowest rank (ties: leftmost) until no concatenation is a token.
// Short pieces use a linear scan (what tiktoken does); long ones (a 10 MB run of one letter is a single piece)
// use a heap over a linked list so they stay O(n log n).
// Not covered: splitting (split.h), special tokens (tokenizer.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace nanochat {

// Open-addressing hash map from byte strings to ranks; keys live in one arena (no per-key allocation).
class RankMap {
 public:
  RankMap() { rehash(64); }
  // Inserts or overwrites (like a Python dict assignment).
  void insert(std::string_view key, int32_t rank);
  int32_t find(std::string_view key) const {
    uint64_t h = hash(key);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.rank < 0) return -1;
      if (s.hash == h && s.len == key.size() && std::memcmp(arena_.data() + s.off, key.data(), key.size()) == 0)
        return s.rank;
    }
  }
  size_t size() const { return count_; }
  static uint64_t hash(std::string_view key);

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0;
    uint32_t len = 0;
    int32_t rank = -1;
  };
  void rehash(size_t capacity);
  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

// Appends the ids of piece to out. Fails with an Error if some single byte of piece has no rank.
void bpe_encode(const RankMap& ranks, std::string_view piece, std::vector<int32_t>& out);

}  // namespace nanochat
