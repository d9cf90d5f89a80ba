// DispatchGroup: the dispatchers (batchers) of one model, one per
// accelerator slot, pulling from that model's queue.
//
// Behaviour. A slot pulls only when it is free. Free slots take turns as the
// single "collector": the collector waits until the queue holds
// max_batch_size requests, or until the oldest queued request has waited
// max_batch_delay_us, or until the earliest queued deadline would pass —
// whichever comes first — then pops the batch (in queue order), hands the
// collector role to the next free slot, and sends the batch to its backend.
// There is no central scheduler and nothing spins: waiting is a queue
// notification or a timer. Under a burst, successive free slots each find a
// full batch and dispatch at once, so slots balance themselves.
//
// Deadlines. Requests whose dispatch deadline passed, or whose client went
// away, are answered (504 / dropped) and never sent to the accelerator; a
// periodic sweep answers expired requests within expiry_check_interval_us
// even while every slot is busy. A batch in flight longer than
// accelerator_timeout_us, or past a request's total deadline, is answered 504
// (a late reply is ignored; each request is answered exactly once).
//
// Worst-case added queueing latency at low load: max_batch_delay_us.
//
// Threading. All state lives on `executor` (a strand); public methods are
// thread-safe and return at once. The executor must outlive the group;
// callbacks that run after the group is destroyed do nothing.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "core/backend.h"
#include "core/request_queue.h"
#include "core/result_router.h"

namespace sluice {

// Hooks for metrics; called on the group's executor. Default: no-ops.
class DispatchObserver {
 public:
  virtual ~DispatchObserver() = default;
  // A batch finished (or failed) on `slot` after `accelerator_time`.
  virtual void OnBatchDone(size_t /*slot*/, size_t /*batch_size*/,
                           SteadyClock::duration /*accelerator_time*/, bool /*ok*/) {}
};

class DispatchGroup {
 public:
  struct Options {
    std::string model;                           // for messages
    size_t max_batch_size = 32;                  // 1..4096
    int64_t max_batch_delay_us = 5'000;          // 0 = dispatch whatever is there
    int64_t accelerator_timeout_us = 3'000'000;  // per batch (seed: 3 s)
    int64_t expiry_check_interval_us = 5'000;    // sweep period while busy
    // A partial batch leaves this long before its earliest deadline, so that
    // the request is still inside its deadline when it is popped.
    int64_t deadline_guard_us = 1'000;
    Executor* executor = nullptr;          // required; strand for all state
    RequestQueue* queue = nullptr;         // required; not owned
    ResultRouter* router = nullptr;        // required; not owned
    DispatchObserver* observer = nullptr;  // optional; not owned
  };

  // Validates options; takes ownership of one backend per slot (non-empty).
  static Result<std::unique_ptr<DispatchGroup>> Create(const Options& options,
                                                       std::vector<std::unique_ptr<Backend>> slots);
  ~DispatchGroup();

  // Marks every slot free and starts pulling. Thread-safe.
  void Start();

  size_t slot_count() const { return slots_.size(); }
  // Slots with a batch in flight right now (any thread; a snapshot).
  size_t busy_slots() const { return busy_.load(std::memory_order_relaxed); }
  // Batches dispatched so far (any thread).
  uint64_t batches_dispatched() const { return batches_.load(std::memory_order_relaxed); }

  // Takes slot `slot` out of service (it pulls no more work; a batch in
  // flight finishes) or puts it back. Thread-safe; applied on the executor.
  // Returns false for an unknown slot.
  bool SetSlotEnabled(size_t slot, bool enabled);
  // Slots in service (any thread; a snapshot).
  size_t enabled_slots() const { return enabled_.load(std::memory_order_relaxed); }

  // Answers every in-flight request with `status` (shutdown); late backend
  // replies are ignored. Thread-safe; runs on the executor.
  void AbortInFlight(Status status);

 private:
  struct Slot {
    std::unique_ptr<Backend> backend;
    bool enabled = true;
    bool busy = false;
    uint64_t batch_id = 0;
    Executor::TimerId timeout_timer = 0;
    TimePoint started;
    std::vector<RequestPtr> batch;
  };

  DispatchGroup(const Options& options, std::vector<std::unique_ptr<Backend>> slots);

  void TryCollect();             // become collector if free slots exist
  void Evaluate();               // collector: dispatch now or wait
  void Dispatch(TimePoint now);  // pop a batch and send it
  void RunOnSlot(size_t slot, std::vector<RequestPtr> batch, TimePoint now);
  void OnBatchDone(size_t slot, uint64_t batch_id, BatchResult&& result);
  void OnBatchTimeout(size_t slot, uint64_t batch_id);
  void Sweep();  // answer expired queued requests
  void EnsureSweep();
  void AnswerDropped(std::vector<RequestPtr>& dropped, TimePoint now);
  void CancelDelayTimer();
  // Wraps fn(DispatchGroup*) so it runs only while the group is alive.
  template <typename F>
  std::function<void()> Guarded(F fn);

  const Options options_;
  Executor& ex_;
  std::vector<Slot> slots_;
  std::deque<size_t> free_slots_;  // on executor
  bool started_ = false;           // on executor
  bool collecting_ = false;        // on executor
  Executor::TimerId delay_timer_ = 0;
  TimePoint delay_timer_at_;
  Executor::TimerId sweep_timer_ = 0;
  std::atomic<size_t> busy_{0};
  std::atomic<size_t> enabled_{0};
  std::atomic<uint64_t> batches_{0};
  // Liveness token for callbacks from queue/backends (cleared in ~DispatchGroup).
  std::shared_ptr<DispatchGroup*> self_;
};

// Process-wide batch id source (never 0).
uint64_t NextBatchId();

}  // namespace sluice
