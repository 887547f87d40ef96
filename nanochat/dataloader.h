// dataloader: batches for training — nanochat's BOS-aligned best-fit packing for pretraining (nanochat/dataloader.py
// tokenizing_distributed_data_loader_with_state_bos_bestfit) and the best-fit-with-padding variant for SFT
// (scripts/chat_sft.py sft_data_generator_bos_bestfit). Both pick, for each free stretch of a row, the longest buffered
// sequence that fits (first among equals); they differ only in what happens when nothing fits (pretraining crops the
// shortest document, SFT pads with BOS).
//
//   nanochat::DataLoader train(encode, bos, B, T, "train", device, ctx.rank, ctx.world_size, resume_state);
//   auto [x, y, state] = train.next();   // int64 (B, T) on device; state = {pq_idx, rg_idx, epoch} for checkpoints
//
// Reading parquet, tokenizing (on tokenizer_threads worker threads) and packing all run on a background thread
// a few batches ahead, so training does not wait; next() only hands over a finished host buffer and copies it to
// the device in one transfer (from pinned memory on CUDA).
// `encode` is called from several threads at once: it must be thread-safe (the tokenizer's encode is).
// Not covered: the older non-BOS-aligned loader; the SFT loader runs synchronously (rendering is cheap).
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "nanochat/dataset.h"

namespace nanochat {

// Batch tokenizer: texts -> token ids (without BOS; the loader prepends it).
using BatchEncoder = std::function<std::vector<std::vector<int>>(const std::vector<std::string>&)>;

// Index of the longest item with length <= remaining, the first of equal lengths; -1 when none fits.
template <typename Items, typename Len>
int64_t best_fit_index(const Items& items, int64_t remaining, Len len) {
  int64_t best = -1, best_len = 0;
  for (size_t i = 0; i < items.size(); i++) {
    int64_t l = int64_t(len(items[i]));
    if (l <= remaining && l > best_len) best = int64_t(i), best_len = l;
  }
  return best;
}

// Fills row[0, capacity) from the document buffer (nanochat/dataloader.py refill_buffer and the best-fit loop):
// refill() is called while the buffer holds fewer than buffer_size documents; best fits are moved in whole; when none
// fits, the shortest document (first among equals) is cropped to the remaining space and its rest discarded.
void pack_row_bestfit(std::vector<std::vector<int32_t>>& buffer, int64_t* row, int64_t capacity, size_t buffer_size,
                      const std::function<void()>& refill);

struct PretrainBatch {
  torch::Tensor inputs, targets;  // int64 (B, T)
  DataState state;                // of the most recently fetched document slice
};

class DataLoader {
 public:
  // split: "train" | "val"; files: the split's shards (empty = split_files(split) of the data directory).
  DataLoader(BatchEncoder encode, int bos, int B, int T, const std::string& split, torch::Device device, int rank = 0,
             int world_size = 1, std::optional<DataState> resume = std::nullopt,
             std::vector<std::filesystem::path> files = {}, int tokenizer_threads = 4, int tokenizer_batch_size = 128,
             int buffer_size = 1000, int prefetch_batches = 3);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  PretrainBatch next();

 private:
  struct HostBatch {
    torch::Tensor data;  // int64 [inputs B*T | targets B*T], pinned on CUDA
    DataState state;
  };
  void produce();

  BatchEncoder encode_;
  int bos_, B_, T_;
  torch::Device device_;
  int threads_, buffer_size_, prefetch_;
  std::unique_ptr<DocumentBatches> docs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HostBatch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

// SFT (scripts/chat_sft.py sft_data_generator_bos_bestfit): one conversation = render_conversation's (ids, mask); mask
// 1 = trained on.
struct TokenizedConversation {
  std::vector<int> ids;
  std::vector<int> mask;
};

struct SftBatch {
  torch::Tensor inputs;   // int32 (B, T)
  torch::Tensor targets;  // int64 (B, T), -1 where not trained on (mask 0, padding)
  bool last_step = false;
  double approx_progress = 0;
  int64_t epoch = 1;
};

class SftDataLoader {
 public:
  // size: number of conversations; get(i): the rendered conversation i. num_iterations > 0 stops (train split)
  // after that many batches; else one epoch of consumption ends it.
  SftDataLoader(int64_t size, std::function<TokenizedConversation(int64_t)> get, int bos, int B, int max_seq_len,
                bool train, int64_t num_iterations, torch::Device device, int rank = 0, int world_size = 1,
                size_t buffer_size = 100);
  SftBatch next();

 private:
  void refill();
  int64_t size_;
  std::function<TokenizedConversation(int64_t)> get_;
  int bos_, B_, T_;
  bool train_;
  int64_t num_iterations_;
  torch::Device device_;
  int ws_;
  size_t buffer_size_;
  std::vector<TokenizedConversation> buffer_;
  int64_t cursor_, consumed_, epoch_ = 1, it_ = 0;
  bool last_step_ = false;
  double approx_progress_ = 0;
  int64_t current_epoch_ = 1;
};

}  // namespace nanochat
