// dataloader: see dataloader.h.
#include "nanochat/dataloader.h"

#include <cstring>
#include <future>

#include "nanochat/common.h"

namespace nanochat {

namespace {

// A fixed set of threads running jobs in submission order; results come back through futures, so the caller
// consumes them in order no matter which thread finished first (batches stay deterministic).
class TokenizerPool {
 public:
  explicit TokenizerPool(int n) {
    for (int i = 0; i < std::max(1, n); i++) workers_.emplace_back([this] { loop(); });
  }
  ~TokenizerPool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  template <typename F>
  auto submit(F f) -> std::future<decltype(f())> {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto fut = task->get_future();
    {
      std::lock_guard lk(mu_);
      jobs_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

struct EncodedSlice {
  std::vector<std::vector<int32_t>> docs;  // [BOS] + tokens
  DataState state;
};

}  // namespace

void pack_row_bestfit(std::vector<std::vector<int32_t>>& buffer, int64_t* row, int64_t capacity, size_t buffer_size,
                      const std::function<void()>& refill) {
  int64_t pos = 0;
  while (pos < capacity) {
    while (buffer.size() < buffer_size) refill();
    const int64_t remaining = capacity - pos;
    int64_t i = best_fit_index(buffer, remaining, [](const std::vector<int32_t>& d) { return d.size(); });
    if (i >= 0) {
      const auto& d = buffer[size_t(i)];
      std::copy(d.begin(), d.end(), row + pos);
      pos += int64_t(d.size());
    } else {
      // Nothing fits: crop the shortest document (first among equals) to fill the row exactly.
      i = 0;
      for (size_t k = 1; k < buffer.size(); k++)
        if (buffer[k].size() < buffer[size_t(i)].size()) i = int64_t(k);
      const auto& d = buffer[size_t(i)];
      std::copy(d.begin(), d.begin() + remaining, row + pos);
      pos = capacity;
    }
    buffer.erase(buffer.begin() + i);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Pretraining loader

DataLoader::DataLoader(BatchEncoder encode, int bos, int B, int T, const std::string& split, torch::Device device,
                       int rank, int world_size, std::optional<DataState> resume,
                       std::vector<std::filesystem::path> files, int tokenizer_threads, int tokenizer_batch_size,
                       int buffer_size, int prefetch_batches)
    : encode_(std::move(encode)),
      bos_(bos),
      B_(B),
      T_(T),
      device_(device),
      threads_(tokenizer_threads),
      buffer_size_(buffer_size),
      prefetch_(std::max(1, prefetch_batches)) {
  if (split != "train" && split != "val") fail("split must be 'train' or 'val', got '{}'", split);
  if (B < 1 || T < 1) fail("batch size and sequence length must be positive (got B={}, T={})", B, T);
  if (buffer_size < 1) fail("document buffer size must be positive");
  if (!encode_) fail("dataloader needs an encoder");
  if (files.empty()) files = split_files(split, {}, rank == 0 && split == "train");
  docs_ = std::make_unique<DocumentBatches>(std::move(files), rank, world_size, tokenizer_batch_size, resume);
  worker_ = std::thread([this] { produce(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void DataLoader::produce() {
  try {
    TokenizerPool pool(threads_);
    std::deque<std::future<EncodedSlice>> inflight;
    const size_t depth = size_t(std::max(2, 2 * threads_));
    std::vector<std::vector<int32_t>> buffer;
    DataState state{0, 0, 1};
    auto refill = [&] {
      // Keep `depth` slices being tokenized ahead; take the oldest (the order never depends on timing).
      while (inflight.size() < depth) {
        auto slice = std::make_shared<DocumentBatches::Slice>(docs_->next());
        inflight.push_back(pool.submit([this, slice] {
          auto ids = encode_(slice->docs);
          if (ids.size() != slice->docs.size())
            fail("encoder returned {} token lists for {} texts", ids.size(), slice->docs.size());
          EncodedSlice out{{}, slice->state};
          out.docs.reserve(ids.size());
          for (const auto& t : ids) {
            std::vector<int32_t> d;
            d.reserve(t.size() + 1);
            d.push_back(bos_);
            d.insert(d.end(), t.begin(), t.end());
            out.docs.push_back(std::move(d));
          }
          return out;
        }));
      }
      EncodedSlice e = inflight.front().get();
      inflight.pop_front();
      for (auto& d : e.docs) buffer.push_back(std::move(d));
      state = e.state;
    };
    const int64_t cap = T_ + 1, BT = int64_t(B_) * T_;
    std::vector<int64_t> rows(size_t(B_ * cap));
    for (;;) {
      for (int b = 0; b < B_; b++) pack_row_bestfit(buffer, rows.data() + b * cap, cap, size_t(buffer_size_), refill);
      auto opts = torch::TensorOptions().dtype(torch::kLong).pinned_memory(device_.is_cuda());
      torch::Tensor host = torch::empty({2 * BT}, opts);
      int64_t* h = host.data_ptr<int64_t>();
      for (int b = 0; b < B_; b++) {
        std::memcpy(h + b * T_, rows.data() + b * cap, size_t(T_) * sizeof(int64_t));
        std::memcpy(h + BT + b * T_, rows.data() + b * cap + 1, size_t(T_) * sizeof(int64_t));
      }
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || int(ready_.size()) < prefetch_; });
      if (stop_) return;
      ready_.push_back(HostBatch{host, state});
      lk.unlock();
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard lk(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

PretrainBatch DataLoader::next() {
  HostBatch hb;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !ready_.empty() || error_; });
    if (ready_.empty()) std::rethrow_exception(error_);
    hb = std::move(ready_.front());
    ready_.pop_front();
  }
  cv_.notify_all();
  const int64_t BT = int64_t(B_) * T_;
  // One host-to-device copy of [inputs | targets]; the pinned block is recycled by torch's host allocator only
  // after the copy has completed.
  torch::Tensor dev = device_.is_cpu() ? hb.data : hb.data.to(device_, /*non_blocking=*/true);
  return {dev.narrow(0, 0, BT).view({B_, T_}), dev.narrow(0, BT, BT).view({B_, T_}), hb.state};
}

// ---------------------------------------------------------------------------------------------------------------------
// SFT loader

SftDataLoader::SftDataLoader(int64_t size, std::function<TokenizedConversation(int64_t)> get, int bos, int B,
                             int max_seq_len, bool train, int64_t num_iterations, torch::Device device, int rank,
                             int world_size, size_t buffer_size)
    : size_(size),
      get_(std::move(get)),
      bos_(bos),
      B_(B),
      T_(max_seq_len),
      train_(train),
      num_iterations_(num_iterations),
      device_(device),
      ws_(world_size),
      buffer_size_(buffer_size),
      cursor_(rank),
      consumed_(rank) {
  if (size_ <= 0) fail("the SFT dataset is empty");
  if (B < 1 || max_seq_len < 1 || buffer_size < 1) fail("SFT loader needs positive batch size, length and buffer");
  if (world_size < 1 || rank < 0 || rank >= world_size) fail("bad rank {} for world size {}", rank, world_size);
}

void SftDataLoader::refill() {
  while (buffer_.size() < buffer_size_) {
    TokenizedConversation c = get_(cursor_ % size_);
    if (c.ids.size() != c.mask.size())
      fail("conversation {} has {} ids but {} mask entries", cursor_, c.ids.size(), c.mask.size());
    buffer_.push_back(std::move(c));
    cursor_ += ws_;
    if (cursor_ >= size_) {
      cursor_ %= size_;
      epoch_++;
    }
  }
}

SftBatch SftDataLoader::next() {
  const int64_t cap = T_ + 1;
  torch::Tensor rows = torch::empty({B_, cap}, torch::kLong);
  torch::Tensor masks = torch::empty({B_, cap}, torch::kInt8);
  std::vector<int64_t> content(size_t(B_), cap);
  auto* r = rows.data_ptr<int64_t>();
  auto* m = masks.data_ptr<int8_t>();
  for (int b = 0; b < B_; b++) {
    int64_t len = 0;
    int64_t* row = r + b * cap;
    int8_t* mrow = m + b * cap;
    while (len < cap) {
      while (buffer_.size() < buffer_size_) refill();
      const int64_t remaining = cap - len;
      int64_t i = best_fit_index(buffer_, remaining, [](const TokenizedConversation& c) { return c.ids.size(); });
      if (i >= 0) {
        const TokenizedConversation& c = buffer_[size_t(i)];
        for (size_t k = 0; k < c.ids.size(); k++)
          row[len + int64_t(k)] = c.ids[k], mrow[len + int64_t(k)] = int8_t(c.mask[k] != 0);
        len += int64_t(c.ids.size());
        buffer_.erase(buffer_.begin() + i);
        consumed_ += ws_;
      } else {
        // Nothing fits: pad the rest of the row with BOS (mask 0) instead of cropping.
        content[size_t(b)] = len;
        for (int64_t k = len; k < cap; k++) row[k] = bos_, mrow[k] = 0;
        break;
      }
    }
  }
  it_++;
  if (train_ && num_iterations_ > 0 && it_ >= num_iterations_) last_step_ = true;
  if (train_) {
    current_epoch_ = epoch_;
    approx_progress_ = num_iterations_ > 0 ? double(it_) / double(num_iterations_) : double(consumed_) / double(size_);
    if (consumed_ >= size_) last_step_ = true;
  }
  torch::Tensor inputs = rows.narrow(1, 0, T_).to(torch::kInt32).contiguous();
  torch::Tensor targets = rows.narrow(1, 1, T_).contiguous();
  targets.masked_fill_(masks.narrow(1, 1, T_) == 0, -1);
  for (int b = 0; b < B_; b++) {
    if (content[size_t(b)] < cap) {
      // Python's targets[i, content_len-1:] = -1 (content_len 0 means index -1: the last position).
      int64_t start = content[size_t(b)] >= 1 ? content[size_t(b)] - 1 : T_ - 1;
      targets[b].narrow(0, start, T_ - start).fill_(-1);
    }
  }
  if (!device_.is_cpu()) {
    inputs = inputs.pin_memory().to(device_, /*non_blocking=*/true);
    targets = targets.pin_memory().to(device_, /*non_blocking=*/true);
  }
  return {inputs, targets, last_step_, approx_progress_, current_epoch_};
}

}  // namespace nanochat
