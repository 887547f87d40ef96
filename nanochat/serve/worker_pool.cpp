// worker_pool: see worker_pool.h.
#include "nanochat/serve/worker_pool.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace nanochat {

// How often a waiting request checks whether its client is still there.
constexpr auto kPollInterval = std::chrono::milliseconds(25);

WorkerThread::WorkerThread() : thread_([this] { loop(); }) {}

WorkerThread::~WorkerThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WorkerThread::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return quit_ || task_ != nullptr; });
    if (task_ == nullptr) return;  // quit with nothing to run
    const std::function<void()>* task = task_;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*task)();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    task_ = nullptr;
    error_ = error;
    done_ = true;
    cv_.notify_all();
  }
}

void WorkerThread::run(const std::function<void()>& fn) {
  std::unique_lock<std::mutex> lock(mu_);
  task_ = &fn;
  done_ = false;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_; });
  if (auto e = std::exchange(error_, nullptr)) std::rethrow_exception(e);
}

WorkerPool::Lease::~Lease() {
  {
    std::lock_guard<std::mutex> lock(pool_.mu_);
    worker_.busy -= slots_;
    worker_.idle_since = ++pool_.clock_;
    pool_.free_slots_ += size_t(slots_);
  }
  pool_.cv_.notify_all();
}

WorkerPool::Ticket::~Ticket() {
  std::lock_guard<std::mutex> lock(pool_.mu_);
  if (queued_) pool_.leave_queue_locked(*this);
}

void WorkerPool::leave_queue_locked(Ticket& t) {
  queue_.erase(std::remove(queue_.begin(), queue_.end(), t.id_), queue_.end());
  t.queued_ = false;
  cv_.notify_all();  // the next in line may now be at the front
}

void WorkerPool::add(std::unique_ptr<ChatModel> model) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto w = std::make_unique<Worker>();
    w->id = int(workers_.size());
    w->slots = std::max(1, model->max_batch());
    w->model = std::move(model);
    if (w->slots == 1) w->thread = std::make_unique<WorkerThread>();
    w->idle_since = ++clock_;
    free_slots_ += size_t(w->slots);
    workers_.push_back(std::move(w));
  }
  cv_.notify_all();
}

WorkerPool::Worker* WorkerPool::pick_locked(int slots) const {
  // The least loaded worker with a free slot; among equals the one idle longest (with one slot each: the worker
  // that went back to the pool first, a plain FIFO of workers).
  Worker* best = nullptr;
  for (const auto& w : workers_) {
    if (w->busy + slots > w->slots) continue;
    if (!best || w->busy < best->busy || (w->busy == best->busy && w->idle_since < best->idle_since)) best = w.get();
  }
  return best;
}

const ChatModel* WorkerPool::any_model() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.empty() ? nullptr : workers_.front()->model.get();
}

std::shared_ptr<WorkerPool::Ticket> WorkerPool::try_enqueue() {
  std::lock_guard<std::mutex> lock(mu_);
  // Requests that a free slot will take at once do not count against the queue.
  if (shutdown_ || queue_.size() >= free_slots_ + max_queue_) return nullptr;
  auto t = std::make_shared<Ticket>(*this, next_ticket_++);
  queue_.push_back(t->id_);
  return t;
}

std::unique_ptr<WorkerPool::Lease> WorkerPool::wait(Ticket& t, const std::function<bool()>& give_up, int slots) {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      int largest = 1;  // workers may join while we wait
      for (const auto& x : workers_) largest = std::max(largest, x->slots);
      const int want = std::min(std::max(1, slots), largest);
      Worker* w = nullptr;
      auto my_turn = [&] {
        if (shutdown_ || !t.queued_) return true;
        w = queue_.front() == t.id_ && free_slots_ >= size_t(want) ? pick_locked(want) : nullptr;
        return w != nullptr;
      };
      cv_.wait_for(lock, kPollInterval, my_turn);
      if (shutdown_ || !t.queued_) {
        if (t.queued_) leave_queue_locked(t);
        return nullptr;
      }
      if (w) {
        w->busy += want;
        free_slots_ -= size_t(want);
        queue_.pop_front();
        t.queued_ = false;
        cv_.notify_all();
        return std::make_unique<Lease>(*this, *w, want);
      }
    }
    if (give_up()) {  // outside the lock: it may make a syscall
      std::lock_guard<std::mutex> lock(mu_);
      if (t.queued_) {
        leave_queue_locked(t);
        dropped_++;
      }
      return nullptr;
    }
  }
}

void WorkerPool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

WorkerPool::Stats WorkerPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.total = int(workers_.size());
  s.queued = int(queue_.size());
  s.slots_free = int(free_slots_);
  s.dropped_from_queue = dropped_;
  for (const auto& w : workers_) {
    s.available += w->busy == 0;
    s.slots_total += w->slots;
    s.workers.push_back({w->id, w->model->device(), w->slots, w->busy});
    s.prefix_cache += w->model->prefix_cache_stats();
  }
  return s;
}

}  // namespace nanochat
