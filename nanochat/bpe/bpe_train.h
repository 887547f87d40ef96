// bpe_train: byte-level BPE training with rustbpe's exact semantics (nanochat/tokenizer.py
// RustBPETokenizer.train_from_iterator), so the same text gives the same merges as Python nanochat's tok_train.
//   BpeTrainer trainer(kSplitPattern);
//   trainer.add_documents(buffer);           // call per buffer of documents (nanochat pulls 8192 at a time)
//   Ranks ranks = trainer.train(32759);      // [(token bytes, id)] for ids 0..: 256 bytes, then merges in order
// Counting splits documents on all cores; merging is a lazy max-heap (count desc, ties: smaller pair first) with
// non-overlapping left-to-right merges inside each word and incremental pair-count deltas.
// Not covered: special tokens (added by make_nanochat_tokenizer in tokenizer.h), reading data files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nanochat/tokenizer.h"

namespace nanochat {

class Splitter;

class BpeTrainer {
 public:
  explicit BpeTrainer(const std::string& pattern, int num_threads = 0);  // 0: all hardware threads
  ~BpeTrainer();
  // Splits every document and adds its pieces to the global piece counts.
  void add_documents(const std::vector<std::string>& docs);
  // Adds one piece directly (tests use this to build exact word counts).
  void add_piece(const std::string& piece, int64_t count);
  size_t num_unique_pieces() const { return counts_.size(); }
  // Runs the merge loop for vocab_size - 256 merges (fewer if pairs run out); returns the mergeable ranks.
  Ranks train(int vocab_size);
  // The merges of the last train() in order: (left id, right id) -> 256 + index.
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  std::unique_ptr<Splitter> splitter_;
  int num_threads_;
  std::unordered_map<std::string, int64_t> counts_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
};

}  // namespace nanochat
