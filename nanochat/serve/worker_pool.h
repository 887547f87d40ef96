// worker_pool: the web server's model replicas (one per worker, e.g. one per GPU) and a bounded FIFO queue of
// requests waiting for one (scripts/chat_web.py WorkerPool, plus continuous batching and the bounds nanochat lacks).
//
// A worker has model->max_batch() slots, one per conversation it decodes at once (1: one request at a time, as
// nanochat). A lease is one slot, or several of one worker for a request of n choices (wait(..., slots)).
//
//   auto ticket = pool.try_enqueue();             // nullptr: every slot busy and the queue full -> answer 429 now
//   auto lease = pool.wait(*ticket, client_gone); // blocks in FIFO order; nullptr if client_gone() or shutdown
//   Worker& w = lease->worker();
//   if (w.thread) w.thread->run([&] { w.model->generate(...); });  // 1 slot: on the worker's own thread
//   else w.model->generate(...);                  // several slots: on the caller's thread; the model batches the
//                                                 // concurrent calls itself
//                                                 // the slot goes back to the pool when the lease dies
//
// Tickets are served strictly in order; the one at the front takes a free slot of the least loaded worker (fewest
// busy slots; among equals the one idle longest), so 2 requests on 2 workers of 4 slots run on both workers. A
// ticket that asks for k slots waits at the front until one worker has k free (k is capped at the largest worker's
// slots, so it never waits for more than any worker has); those behind it wait too, so it cannot starve.
// Requests that a free slot will take at once do not count against the queue: try_enqueue refuses only when
// queued >= free slots + max_queue. A ticket dropped before it was served (its client left) leaves the queue at
// once, so it never runs. Thread-safe. Not covered: what a worker does with its model (chat_server.cpp).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/serve/chat_model.h"

namespace nanochat {

// A thread of a worker's own. Its model runs only there, so per-thread state that running a model creates
// (an OpenMP team per calling thread, a malloc arena, CUDA handles) exists once per replica rather than once per
// HTTP connection thread that happened to serve a request (which grew the server's memory request after request).
class WorkerThread {
 public:
  WorkerThread();
  ~WorkerThread();  // waits for a running task, then joins
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  // Runs fn on the thread and blocks until it has returned; rethrows what it threw. One caller at a time (the
  // holder of the worker's lease); fn may use the caller's objects, which stay put while the caller waits.
  void run(const std::function<void()>& fn);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* task_ = nullptr;
  std::exception_ptr error_;
  bool done_ = false, quit_ = false;
  std::thread thread_;
};

class WorkerPool {
 public:
  struct Worker {
    int id;  // reported to clients as "gpu"
    std::unique_ptr<ChatModel> model;
    // Runs model->generate when the worker has one slot (destroyed before the model); nullptr when it has several
    // (the model then runs its own decode thread and each request calls generate on its own thread).
    std::unique_ptr<WorkerThread> thread;
    int slots = 1;            // model->max_batch(), at least 1
    int busy = 0;             // slots leased now (guarded by the pool's mutex)
    uint64_t idle_since = 0;  // pool clock at the last release (guarded by the pool's mutex)
  };

  class Lease {  // one slot of a worker, given back when the lease dies
   public:
    Lease(WorkerPool& pool, Worker& w, int slots = 1) : pool_(pool), worker_(w), slots_(slots) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Worker& worker() { return worker_; }
    int slots() const { return slots_; }  // of worker(), all for this lease

   private:
    WorkerPool& pool_;
    Worker& worker_;
    int slots_;
  };

  class Ticket {
   public:
    Ticket(WorkerPool& pool, uint64_t id) : pool_(pool), id_(id) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    friend class WorkerPool;
    WorkerPool& pool_;
    uint64_t id_;
    bool queued_ = true;  // guarded by pool_.mu_
  };

  struct Stats {
    int total = 0;      // workers
    int available = 0;  // workers with no busy slot (total - available are generating at least one reply)
    int queued = 0;     // requests waiting for a slot
    int slots_total = 0, slots_free = 0;  // over all workers
    uint64_t dropped_from_queue = 0;
    struct WorkerStats {
      int id;
      std::string device;
      int slots, busy;
    };
    std::vector<WorkerStats> workers;
    PrefixCacheStats prefix_cache;  // summed over the workers' models
  };

  explicit WorkerPool(size_t max_queue) : max_queue_(max_queue) {}
  WorkerPool(const WorkerPool&) = delete;

  // Adds a loaded replica (ids 0, 1, ... in order) with model->max_batch() slots; waiting requests may take them at
  // once.
  void add(std::unique_ptr<ChatModel> model);
  // Some loaded replica, for tokenizing (read-only, thread-safe); nullptr before the first is loaded.
  const ChatModel* any_model() const;

  std::shared_ptr<Ticket> try_enqueue();
  // slots: how many slots of one worker the request wants (at most the largest worker's; see above).
  std::unique_ptr<Lease> wait(Ticket& ticket, const std::function<bool()>& give_up, int slots = 1);
  // Wakes every waiter with nullptr and refuses new tickets.
  void shutdown();

  Stats stats() const;
  size_t max_queue() const { return max_queue_; }

 private:
  void leave_queue_locked(Ticket& t);
  // The worker the next request gets, nullptr if none has `slots` free slots.
  Worker* pick_locked(int slots = 1) const;

  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t free_slots_ = 0;
  uint64_t clock_ = 0;          // counts releases, to order idle workers
  std::deque<uint64_t> queue_;  // ticket ids, oldest first
  uint64_t next_ticket_ = 0;
  uint64_t dropped_ = 0;
  bool shutdown_ = false;
};

}  // namespace nanochat
