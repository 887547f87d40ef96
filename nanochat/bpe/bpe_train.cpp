// bpe_train: see bpe_train.h.
#include "nanochat/bpe/bpe_train.h"

#include <algorithm>
#include <queue>
#include <string_view>
#include <thread>

#include "nanochat/common.h"
#include "nanochat/bpe/split.h"

namespace nanochat {

namespace {

using Pair = uint64_t;  // (left << 32) | right: numeric order == lexicographic order on (left, right)
inline Pair make_pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
inline int32_t pair_left(Pair p) { return int32_t(p >> 32); }
inline int32_t pair_right(Pair p) { return int32_t(p & 0xFFFFFFFFu); }

struct PairHash {
  size_t operator()(Pair p) const {
    p ^= p >> 33;
    p *= 0xFF51AFD7ED558CCDULL;
    p ^= p >> 33;
    return size_t(p);
  }
};

// A heap entry: a pair, the count it had when queued, and the words where it may occur.
struct Job {
  int64_t count;
  Pair pair;
  uint32_t where;  // index into the word-set pool
};
// std::priority_queue pops the largest: larger count first; equal counts -> the smaller pair first.
struct JobLess {
  bool operator()(const Job& a, const Job& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

// Adds word w to a word-index list unless it is already its last element (words are visited one at a time).
inline void add_word(std::vector<int32_t>& set, int32_t w) {
  if (set.empty() || set.back() != w) set.push_back(w);
}

}  // namespace

BpeTrainer::BpeTrainer(const std::string& pattern, int num_threads)
    : splitter_(std::make_unique<Splitter>(pattern)),
      num_threads_(num_threads > 0 ? num_threads : int(std::max(1u, std::thread::hardware_concurrency()))) {}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_piece(const std::string& piece, int64_t count) { counts_[piece] += count; }

void BpeTrainer::add_documents(const std::vector<std::string>& docs) {
  // Each thread counts the pieces of a contiguous chunk of documents; the chunks are then merged in order.
  size_t n_threads = std::min<size_t>(size_t(num_threads_), std::max<size_t>(1, docs.size()));
  std::vector<std::unordered_map<std::string_view, int64_t>> local(n_threads);
  std::vector<std::exception_ptr> errors(n_threads);
  auto count_range = [&](size_t t) {
    try {
      size_t lo = docs.size() * t / n_threads, hi = docs.size() * (t + 1) / n_threads;
      auto& m = local[t];
      for (size_t i = lo; i < hi; i++) splitter_->for_each(docs[i], [&](std::string_view piece) { m[piece]++; });
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  if (n_threads == 1) {
    count_range(0);
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < n_threads; t++) pool.emplace_back(count_range, t);
    for (auto& th : pool) th.join();
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (auto& m : local)
    for (const auto& [piece, c] : m) counts_[std::string(piece)] += c;
}

Ranks BpeTrainer::train(int vocab_size) {
  if (vocab_size < 256) fail("BPE vocab size must be at least 256 (the byte tokens), got {}", vocab_size);
  const int num_merges = vocab_size - 256;
  merges_.clear();

  // Words: one per unique piece, its bytes as ids, weighted by its count.
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> wcount;
  words.reserve(counts_.size());
  wcount.reserve(counts_.size());
  for (const auto& [piece, c] : counts_) {
    std::vector<int32_t> ids(piece.size());
    for (size_t i = 0; i < piece.size(); i++) ids[i] = int32_t(uint8_t(piece[i]));
    words.push_back(std::move(ids));
    wcount.push_back(c);
  }

  // Initial pair counts and, per pair, the words it occurs in.
  std::unordered_map<Pair, int64_t, PairHash> pair_counts;
  std::unordered_map<Pair, std::vector<int32_t>, PairHash> where;
  for (size_t w = 0; w < words.size(); w++) {
    const auto& ids = words[w];
    if (ids.size() < 2 || wcount[w] == 0) continue;
    for (size_t i = 0; i + 1 < ids.size(); i++) {
      Pair p = make_pair_key(ids[i], ids[i + 1]);
      pair_counts[p] += wcount[w];
      add_word(where[p], int32_t(w));
    }
  }

  std::vector<std::vector<int32_t>> sets;  // word-set pool referenced by jobs
  std::priority_queue<Job, std::vector<Job>, JobLess> heap;
  for (auto& [p, set] : where) {
    int64_t c = pair_counts[p];
    if (c > 0) {
      sets.push_back(std::move(set));
      heap.push({c, p, uint32_t(sets.size() - 1)});
    }
  }
  where.clear();

  std::vector<std::string> vocab(256);
  for (int i = 0; i < 256; i++) vocab[i] = std::string(1, char(i));
  std::unordered_map<Pair, std::vector<int32_t>, PairHash> created;  // pairs created by this merge -> words
  std::vector<std::pair<Pair, int32_t>> deltas;
  while (int(merges_.size()) < num_merges && !heap.empty()) {
    Job top = heap.top();
    heap.pop();
    // Lazy refresh: counts only fall after a pair is queued; re-queue with the current count.
    auto it = pair_counts.find(top.pair);
    int64_t current = it == pair_counts.end() ? 0 : it->second;
    if (current <= 0) {
      std::vector<int32_t>().swap(sets[top.where]);
      continue;
    }
    if (current != top.count) {
      top.count = current;
      heap.push(top);
      continue;
    }
    const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
    const int32_t new_id = 256 + int32_t(merges_.size());
    merges_.emplace_back(a, b);
    vocab.push_back(vocab[a] + vocab[b]);

    created.clear();
    for (int32_t w : sets[top.where]) {
      auto& ids = words[w];
      size_t n = ids.size();
      if (n < 2) continue;
      deltas.clear();
      // Rewrite in place, left to right, non-overlapping: out (ids[0..o)) never overtakes the input (i).
      size_t o = 0, i = 0;
      while (i < n) {
        if (i + 1 < n && ids[i] == a && ids[i + 1] == b) {
          if (o > 0) {
            int32_t x = ids[o - 1];
            deltas.emplace_back(make_pair_key(x, a), -1);
            deltas.emplace_back(make_pair_key(x, new_id), 1);
          }
          deltas.emplace_back(top.pair, -1);
          if (i + 2 < n) {
            int32_t y = ids[i + 2];
            deltas.emplace_back(make_pair_key(b, y), -1);
            deltas.emplace_back(make_pair_key(new_id, y), 1);
          }
          ids[o++] = new_id;
          i += 2;
        } else {
          ids[o++] = ids[i++];
        }
      }
      ids.resize(o);
      for (const auto& [p, d] : deltas) {
        int64_t total = d * wcount[w];
        if (total == 0) continue;
        pair_counts[p] += total;
        if (d > 0) add_word(created[p], w);
      }
    }
    std::vector<int32_t>().swap(sets[top.where]);
    for (auto& [p, set] : created) {
      int64_t c = pair_counts[p];
      if (c > 0) {
        sets.push_back(std::move(set));
        heap.push({c, p, uint32_t(sets.size() - 1)});
      }
    }
  }

  Ranks ranks;
  ranks.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); id++) ranks.emplace_back(std::move(vocab[id]), int32_t(id));
  return ranks;
}

}  // namespace nanochat
