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
// Failures. A batch that fails as a whole (the backend's error, a
// wrong-length reply, or no reply within accelerator_timeout_us) is retried
// as a unit on the next free slot — another endpoint's when one is usable —
// after the RetryPolicy's backoff, before any new batch is popped. Requests
// whose deadline would pass first are answered 504; after max_retries the
// requests go to the dead-letter queue and are answered 502. Per-item errors
// are answers, never retried. Each endpoint (a group of slots, e.g. the
// connections to one URL) has a CircuitBreaker: an open endpoint's slots
// pull nothing until its cooldown ends and one probe batch succeeds.
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
#include <optional>
#include <random>
#include <vector>

#include "common/clock.h"
#include "core/backend.h"
#include "core/circuit_breaker.h"
#include "core/dead_letter_queue.h"
#include "core/request_log.h"
#include "core/request_queue.h"
#include "core/result_router.h"
#include "core/retry_policy.h"

namespace sluice {

// Hooks for metrics; called on the group's executor. Default: no-ops.
class DispatchObserver {
 public:
  virtual ~DispatchObserver() = default;
  // A batch finished (or failed) on `slot` after `accelerator_time`.
  virtual void OnBatchDone(size_t /*slot*/, size_t /*batch_size*/,
                           SteadyClock::duration /*accelerator_time*/, bool /*ok*/) {}
  // `requests` of a failed batch on `slot` will be retried.
  virtual void OnRetry(size_t /*slot*/, size_t /*requests*/) {}
  // `requests` exhausted their retries and went to the dead-letter queue.
  virtual void OnDeadLetter(size_t /*requests*/) {}
  // Endpoint `endpoint`'s breaker changed to `state`; available_slots()
  // already reflects it.
  virtual void OnBreakerChange(size_t /*endpoint*/, BreakerState /*state*/) {}
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
    RetryPolicy retry;                // batch-level failures
    CircuitBreaker::Options breaker;  // per endpoint
    // Endpoint index of each slot (slots of one endpoint share a breaker);
    // empty = every slot is an endpoint of its own. Indexes are 0..E-1.
    std::vector<size_t> slot_endpoints;
    // Name of each endpoint (for health); empty = the first slot's backend name.
    std::vector<std::string> endpoint_names;
    DeadLetterQueue* dead_letters = nullptr;  // optional; not owned
    RequestLog* log = nullptr;                // optional; not owned; gets one BatchRecord per batch
    uint64_t retry_seed = 0;                  // jitter RNG seed; 0 = random
    Executor* executor = nullptr;             // required; strand for all state
    RequestQueue* queue = nullptr;            // required; not owned
    ResultRouter* router = nullptr;           // required; not owned
    DispatchObserver* observer = nullptr;     // optional; not owned
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

  // Slots that can take work: enabled and their endpoint's breaker closed
  // (any thread; a snapshot). Admission capacity follows this.
  size_t available_slots() const;

  size_t endpoint_count() const { return endpoints_.size(); }
  // REQUIRES: endpoint < endpoint_count(). Any thread (snapshots).
  const std::string& endpoint_name(size_t endpoint) const { return endpoints_[endpoint].name; }
  BreakerState endpoint_state(size_t endpoint) const {
    return endpoints_[endpoint].breaker.state();
  }
  size_t endpoint_slots(size_t endpoint) const { return endpoints_[endpoint].slots.size(); }
  // Requests waiting for a retry right now (any thread; a snapshot).
  size_t retries_pending() const { return retry_requests_.load(std::memory_order_relaxed); }

  // Answers every in-flight request, and every request waiting for a retry,
  // with `status` (shutdown); late backend replies are ignored. Thread-safe;
  // runs on the executor.
  void AbortInFlight(Status status);

 private:
  struct Slot {
    std::unique_ptr<Backend> backend;
    size_t endpoint = 0;
    bool enabled = true;
    bool busy = false;
    bool timed_out = false;  // the batch was taken back; waiting for the late reply
    uint64_t batch_id = 0;
    Executor::TimerId timeout_timer = 0;
    TimePoint started;
    std::vector<RequestPtr> batch;
  };

  struct Endpoint {
    std::string name;
    std::vector<size_t> slots;
    CircuitBreaker breaker;
    Executor::TimerId probe_timer = 0;  // fires when the open breaker may probe
  };
  // A failed batch waiting for its retry.
  struct PendingRetry {
    TimePoint ready_at;
    std::vector<RequestPtr> batch;
    size_t failed_endpoint = 0;
  };

  DispatchGroup(const Options& options, std::vector<std::unique_ptr<Backend>> slots);

  void TryCollect();             // become collector if free slots exist
  void Evaluate();               // collector: dispatch now or wait
  void Dispatch(TimePoint now);  // pop a batch and send it
  void RunOnSlot(size_t slot, std::vector<RequestPtr> batch, TimePoint now);
  void OnBatchDone(size_t slot, uint64_t batch_id, BatchResult&& result);
  void OnBatchTimeout(size_t slot, uint64_t batch_id);
  void DeliverResults(size_t slot, uint64_t batch_id, std::vector<RequestPtr>& batch,
                      BatchResult& result, TimePoint now);
  void Sweep();  // answer expired queued requests
  // A free slot whose endpoint may take a batch now, preferring one not of
  // `avoid_endpoint`; removed from free_slots_ when `take`.
  std::optional<size_t> PickSlot(TimePoint now, size_t avoid_endpoint, bool take);
  void StopCollectingIfNoSlot(TimePoint now);
  // Retries, dead letters or 504s for the requests of a failed batch.
  void HandleFailedBatch(size_t slot, std::vector<RequestPtr> batch, const Status& error,
                         TimePoint now);
  void DispatchRetries(TimePoint now);
  void ArmRetryTimer();
  void ExpireRetries(TimePoint now);
  void RecordOutcome(size_t slot, bool ok, TimePoint now);
  void LogBatch(size_t slot, size_t size, TimePoint now, const Status& error);
  void ArmProbeTimer(size_t endpoint);
  void EnsureSweep();
  void AnswerDropped(std::vector<RequestPtr>& dropped, TimePoint now);
  void CancelDelayTimer();
  // Wraps fn(DispatchGroup*) so it runs only while the group is alive.
  template <typename F>
  std::function<void()> Guarded(F fn);

  const Options options_;
  Executor& ex_;
  std::vector<Slot> slots_;
  std::vector<Endpoint> endpoints_;
  std::unique_ptr<std::atomic<bool>[]> slot_enabled_;  // mirrors Slot::enabled, any thread
  std::vector<PendingRetry> retries_;                  // on executor; ordered by ready_at
  Executor::TimerId retry_timer_ = 0;
  TimePoint retry_timer_at_;
  std::atomic<size_t> retry_requests_{0};
  std::mt19937_64 rng_;
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

template <typename F>
std::function<void()> DispatchGroup::Guarded(F fn) {
  return [weak = std::weak_ptr<DispatchGroup*>(self_), fn = std::move(fn)]() mutable {
    if (auto self = weak.lock()) fn(*self);
  };
}

// Process-wide batch id source (never 0).
uint64_t NextBatchId();

// An outcome carrying only `status` (for errors).
InferenceOutcome ErrorOutcome(Status status);

}  // namespace sluice
