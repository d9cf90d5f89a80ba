// DispatchGroup: the dispatchers (batchers) of one model, one per
// accelerator slot, pulling from that model's queue.
//
// Behaviour. A slot pulls only when it is free. Free slots take turns as the
// single "collector", which decides when the next batch leaves:
//   adaptive (default): at once, unless the load needs fuller batches to
//     keep up. With the learnt cost t(n) = fixed + per_item * n (the shared
//     BatchCostModel), S slots that can take work and the measured dispatch
//     rate lambda (stretched by `batching_headroom`), the smallest batch
//     that keeps up is n* = ceil(lambda * fixed / (S - lambda * per_item))
//     (max_batch_size when the denominator is <= 0). The collector
//     dispatches as soon as n* requests are queued — unless, at that rate, a
//     full batch would be queued within max_batch_delay_us anyway (then it
//     waits for it, as static would). At low load n* is 1, so a lone
//     request never waits for company that is not coming.
//   static: waits for max_batch_size requests (wait-or-full).
// Either way it never waits longer than max_batch_delay_us after the oldest
// queued arrival, nor past the earliest priority deadline (less
// deadline_guard_us); then it pops the batch (in queue order), hands the
// collector role to the next free slot, and sends the batch to its backend.
// There is no central scheduler and nothing spins: waiting is a queue
// notification or a timer. Under a burst, successive free slots each find a
// full batch and dispatch at once, so slots balance themselves.
//
// Deadlines. Requests whose dispatch deadline passed, or whose client went
// away, are answered (504 / dropped) and never sent to the accelerator; a
// periodic sweep answers expired requests within expiry_check_interval_us
// even while every slot is busy. A batch is timed out by
// accelerator_timeout_us only. A request whose own total deadline passes
// while its batch is in flight is answered 504 alone by the sweep; its
// batch-mates get their results, and it is never a backend failure, never
// retried and never counted by a breaker (each request is answered exactly
// once; a late reply is ignored).
//
// Failures. A batch that fails as a whole (the backend's error, a
// wrong-length reply, or no reply within accelerator_timeout_us) is retried
// as a unit on the next free slot of a closed endpoint — one it has not
// failed on yet while such an endpoint is healthy (it waits for it), never
// as a half-open endpoint's probe — after the RetryPolicy's backoff, before
// any new batch is popped. Requests
// whose deadline would pass first are answered 504; after max_retries the
// requests go to the dead-letter queue and are answered 502. Per-item errors
// are answers, never retried. What a client reads speaks of its request
// ("model 'm' failed after 3 attempts (no reply within 3000 ms)"); the
// backend's name and its own error text go to the outcome's `detail`, the
// dead-letter entry, the batch record and OnBatchFailed(). Each endpoint (a
// group of slots, e.g. the connections to one URL) has a CircuitBreaker: an open endpoint's slots
// pull nothing until its cooldown ends and one probe batch succeeds. While
// no endpoint is closed, requests waiting for a retry are answered at once
// (503 backends_unavailable): retries never run as probes. While no slot
// can take work and no endpoint is probing, queued requests that could not
// be dispatched before the next probe (plus one full batch) are answered
// the same way, with Retry-After = time to that probe, instead of expiring
// later; requests that arrive meanwhile are swept and answered too.
//
// Worst-case added queueing latency: max_batch_delay_us (adaptive: only
// while the load needs fuller batches).
//
// Asynchronous work. While the queue holds asynchronous requests, a free
// slot's batch is sized so that its expected end (the cost model's) falls
// between the other busy slots' ends rather than on one: the slots finish
// in turn, and a synchronous request arriving meanwhile waits for the next
// free slot about a batch / slots at worst, not a whole batch. Only the
// asynchronous fill is cut (the synchronous requests queued all go, as they
// are first in the queue), and a batch to no less than a quarter of
// max_batch_size (or the limit below, if lower). While synchronous requests
// flow, every batch that async work fills stops at
// Options::async_fill_max_batch_size (three quarters of max_batch_size,
// rounded up, by default): each item of fill lengthens the ride of the
// synchronous requests in its batch, and at a steady synchronous load
// nearly every batch carries some. A worker's claim does the same against
// the Redis queue: its claim loop asks AsyncFillSize() and the claim script
// cuts the asynchronous fill there
// (RedisBatchClaimer::ClaimOptions::async_fill_to).
//
// Batches formed elsewhere. A worker batches against the shared Redis
// queue, not a local one: its claim loop waits for this group's
// TargetBatchSize() (or the model's max_batch_delay_us, never past the
// earliest deadline) in the claim script, and hands each claimed batch to
// Submit(). Such a group has no queue (Options::queue null) and never
// batches again: a handed batch runs whole on the next free slot that can
// take work — after due retries, before anything is popped from a queue.
// While it waits, handed requests keep the queue's rules: past their
// dispatch deadline (or cancelled) they are answered and never sent, and
// while no slot can take work they are refused (503) like queued ones.
//
// Retirement. A reload that changes a model's backends or batching
// replaces its group (ModelScheduler::Replace): the old one is retired. Once
// Retire() is applied it pulls nothing more from its queue and starts no
// batch; its batches in flight finish on their backends and are answered as
// usual; what waits for a retry or a slot there, and the retries of a batch
// of it that fails later, go to a hand-over function (the successor's
// Submit(): they run there whole, on its next free slot, without the
// backoff). A retry handed over is bound by its total deadline only (its
// dispatch deadline becomes that, less deadline_guard_us), as a retry here
// is. From then on its
// breakers are no longer reported to the observer; its batches still are.
// A group never started never touches its queue (a reload that is refused
// destroys the group it prepared).
//
// Threading. All state lives on `executor` (a strand); public methods are
// thread-safe and return at once. The executor must outlive the group;
// callbacks that run after the group is destroyed do nothing (destroy it
// only while none runs, e.g. after the io_context stopped).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/backend.h"
#include "core/circuit_breaker.h"
#include "core/dead_letter_queue.h"
#include "core/dispatch_observer.h"
#include "core/request_log.h"
#include "core/request_queue.h"
#include "core/result_router.h"
#include "core/retry_policy.h"
#include "limits/batch_cost_model.h"
#include "tracing/tracer.h"

namespace sluice {

// When a collector lets a partial batch go; see DispatchGroup.
enum class BatchingMode {
  kAdaptive,  // at once unless the load needs fuller batches (default)
  kStatic,    // wait for a full batch or max_batch_delay_us
};

class DispatchGroup {
 public:
  struct Options {
    std::string model;                   // for messages
    size_t max_batch_size = 32;          // 1..4096
    int64_t max_batch_delay_us = 5'000;  // upper bound on waiting; 0 = never wait
    BatchingMode batching = BatchingMode::kAdaptive;
    // While synchronous requests flow (one is queued, or one went to a slot
    // within the last second), a batch that asynchronous work fills is at
    // most this size (<= max_batch_size): the fill lengthens the batch the
    // synchronous requests ride in, and so their latency. The synchronous
    // requests queued always all go. 0 = three quarters of max_batch_size
    // (rounded up); max_batch_size = no limit.
    size_t async_fill_max_batch_size = 0;
    // Adaptive: lambda is stretched by this much (>= 0) so that batches fill
    // a little before the slots saturate.
    double batching_headroom = 0.25;
    // Adaptive: time constant of the dispatch-rate estimate (>= 1); short,
    // so that a load arriving at once is batched for within a fraction of
    // a second.
    int64_t rate_time_constant_ms = 250;
    // The model's batch cost; every successful batch is recorded in it.
    // Optional (not owned); null: a private one on the seed's prior.
    BatchCostModel* cost_model = nullptr;
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
    // Not owned; null: the group runs only the batches handed to Submit().
    DispatchQueue* queue = nullptr;
    ResultRouter* router = nullptr;        // required; not owned
    DispatchObserver* observer = nullptr;  // optional; not owned
    // Spans of the batches (dispatch_group_tracing.cc); optional; not owned.
    const tracing::Tracer* tracer = nullptr;
  };

  // Validates options; takes ownership of one backend per slot (non-empty).
  static Result<std::unique_ptr<DispatchGroup>> Create(const Options& options,
                                                       std::vector<std::unique_ptr<Backend>> slots);
  ~DispatchGroup();

  // Marks every slot free and starts pulling. Thread-safe.
  void Start();

  // Runs `batch`, formed elsewhere (a worker's claim from Redis), as it is on
  // the next free slot that can take work: at once when there is one, else
  // in hand-over order once one frees (see "Batches formed elsewhere"); a
  // retired group hands it over (see "Retirement").
  // Requests whose dispatch deadline passed, or whose client went away, are
  // answered instead of sent; a batch over max_batch_size runs as several.
  // Thread-safe; applied on the executor.
  void Submit(std::vector<RequestPtr> batch);
  // Requests handed to Submit() that wait for a slot (any thread; a snapshot).
  size_t handed_waiting() const { return handed_requests_.load(std::memory_order_relaxed); }

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
  // Whether slot `slot` is in service (as SetSlotEnabled() last asked; a
  // retired group's are all out), and its endpoint's index. REQUIRES:
  // slot < slot_count(). Any thread.
  bool slot_enabled(size_t slot) const {
    return slot_enabled_[slot].load(std::memory_order_relaxed);
  }
  size_t slot_endpoint(size_t slot) const { return slots_[slot].endpoint; }

  // Slots that can take work: enabled and their endpoint's breaker closed
  // (any thread; a snapshot). Admission capacity follows this.
  size_t available_slots() const;
  // Endpoints that are half-open (may run one probe batch) and have an
  // enabled slot (any thread; a snapshot).
  size_t probing_endpoints() const;
  // When the next open endpoint may probe; nullopt when none is open (any
  // thread; a snapshot).
  std::optional<TimePoint> next_probe_at() const;
  // Slots that can take work (busy or not), plus one per half-open endpoint
  // (its probe, in flight or not): how many batches it makes sense to hand
  // this group. 0 means none (a worker claims no batch then).
  size_t batch_room() const { return available_slots() + probing_endpoints(); }
  // The smallest batch the collector waits for at `now` (adaptive; static:
  // max_batch_size). Any thread: a worker's claim loop waits for it before
  // claiming from Redis.
  size_t TargetBatchSize(TimePoint now) const;
  // The batch worth waiting for with `depth` requests queued and
  // `delay_left` until a partial batch must leave: TargetBatchSize(now), or
  // a full batch when, at the measured rate, one will be queued within
  // delay_left anyway (a partial one would then buy no latency that static
  // batching lacks, and cost throughput). Any thread: the collector's rule,
  // and a worker's claim loop's for the next claim while a batch fills.
  size_t BatchToWaitFor(TimePoint now, size_t depth, SteadyClock::duration delay_left) const;
  // The size a batch taken now should reach with asynchronous fill: the
  // one, from a quarter of max_batch_size (or AsyncFillLimit(), if lower)
  // up to AsyncFillLimit(), whose expected end falls farthest from the
  // other busy slots' (see "Asynchronous work"). It runs on a free slot
  // now, or, with every slot busy, on the one expected to free first,
  // then. AsyncFillLimit() while no slot is busy. Any thread: a worker's
  // claim loop asks for it, as its claims cannot see the group's queue.
  size_t AsyncFillSize(TimePoint now) const;
  // When a slot that can take work is expected to be free: `now` while one
  // is, else the earliest expected end (the cost model's) of a batch in
  // flight, before `now` when that batch is overdue; TimePoint::max() once
  // it has run twice its expected time (a slow or hung device: no end in
  // sight); nullopt when no busy slot has an expected end (timed out, or
  // its batch being answered). Any thread (a snapshot): a worker's claim
  // loop claims the next batch a round trip before it.
  std::optional<TimePoint> NextFreeSlotAt(TimePoint now) const;
  // How long, at the measured dispatch rate, until `more` requests arrive;
  // duration::max() while nothing was dispatched lately. Any thread.
  SteadyClock::duration TimeToQueue(TimePoint now, size_t more) const;

  size_t endpoint_count() const { return endpoints_.size(); }
  // REQUIRES: endpoint < endpoint_count(). Any thread (snapshots).
  const std::string& endpoint_name(size_t endpoint) const { return endpoints_[endpoint].name; }
  BreakerState endpoint_state(size_t endpoint) const {
    return endpoints_[endpoint].breaker.state();
  }
  size_t endpoint_slots(size_t endpoint) const { return endpoints_[endpoint].slots.size(); }
  // Requests waiting for a retry right now (any thread; a snapshot).
  size_t retries_pending() const { return retry_requests_.load(std::memory_order_relaxed); }

  // Retires the group (see "Retirement"): `hand_over` gets what waits for
  // a slot or a retry now and every later retry, on the executor. A second
  // call does nothing. Thread-safe; applied on the executor.
  void Retire(std::function<void(std::vector<RequestPtr>)> hand_over);
  // Retired (any thread; set when Retire() is applied).
  bool retired() const { return retired_.load(std::memory_order_acquire); }
  // Retired with nothing in flight or waiting: nothing of it will run again
  // (any thread; a snapshot).
  bool drained() const {
    return retired() && busy_slots() == 0 && retries_pending() == 0 && handed_waiting() == 0;
  }
  // Starts this group's dispatch-rate estimate and its synchronous-flow mark
  // from `previous`'s, so that a successor batches for the load at once.
  // Call before Start(). Any thread.
  void CarryOverLoad(const DispatchGroup& previous);

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
    TimePoint earliest_total;  // earliest total deadline in `batch`
    std::vector<RequestPtr> batch;
    std::vector<size_t> tried_endpoints;  // where `batch` ran, this attempt's included
    tracing::SpanContext trace;           // the batch's span (a root; invalid: no tracer)
    int64_t trace_start_unix_nanos = 0;
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
    std::vector<size_t> failed_endpoints;  // every endpoint it failed on
    std::string last_detail;               // internal: the last failure (see FailureDetail)
  };

  DispatchGroup(const Options& options, std::vector<std::unique_ptr<Backend>> slots);

  // Starts the span of the batch about to run on `slot` (a root, sampled
  // when a member's trace is) and stamps its traceparent on the members.
  void StartBatchSpan(Slot& slot);
  // Ends it: the batch span, linked to every member's span, and its
  // backend call as a child; `error` not OK marks both failed.
  void EndBatchSpan(const Slot& slot, const std::vector<RequestPtr>& batch, const Status& error);

  void TryCollect();              // run handed batches, then become collector if free slots exist
  void RunHanded(TimePoint now);  // handed batches onto free slots
  // Moves the handed requests whose dispatch deadline is <= `until` into `out`.
  void TakeHanded(TimePoint until, std::vector<RequestPtr>* out);
  size_t QueueDepth() const { return queue_ != nullptr ? queue_->Depth() : 0; }
  void Evaluate();               // collector: dispatch now or wait
  void Dispatch(TimePoint now);  // pop a batch and send it
  // How many requests slot `slot` takes now (see "Asynchronous work").
  size_t BatchSizeFor(size_t slot, TimePoint now) const;
  // The size in [least, max(least, most)] whose expected end falls farthest
  // from the busy slots' (all but `except`) expected ends and those of
  // their next batches of that most; larger wins ties. Any thread.
  size_t StaggeredSize(size_t least, size_t most, size_t except, TimePoint now) const;
  // The largest batch asynchronous work may fill now:
  // Options::async_fill_max_batch_size (resolved) while synchronous
  // requests flow (`sync_queued`, or one went to a slot within
  // kSyncFlowWindow), else max_batch_size. Any thread.
  size_t AsyncFillLimit(TimePoint now, bool sync_queued) const;
  // The busy slot whose batch is expected to end first and when (it may
  // have passed); {slots_.size(), TimePoint()} when none has an expected end.
  std::pair<size_t, TimePoint> ExpectedEnd() const;
  // `tried`: endpoints the batch already failed on (a retry).
  void RunOnSlot(size_t slot, std::vector<RequestPtr> batch, TimePoint now,
                 std::vector<size_t> tried = {});
  void OnBatchDone(size_t slot, uint64_t batch_id, BatchResult&& result);
  void OnBatchTimeout(size_t slot, uint64_t batch_id);
  void DeliverResults(size_t slot, uint64_t batch_id, std::vector<RequestPtr>& batch,
                      BatchResult& result, TimePoint now);
  void Sweep();  // answer expired queued and in-flight requests
  void ExpireInFlight(TimePoint now);
  // Nothing can take work and nothing probes: answer the queued requests
  // that cannot be served before the next probe (503 backends_unavailable).
  void RefuseUnservable(TimePoint now);
  void PublishProbeTime();  // next_probe_ns_ from the breakers
  void CountDispatched(size_t n, TimePoint now);
  double RateAt(TimePoint now) const;  // dispatch_rate_ decayed to `now`
  // A free slot whose endpoint may take a batch now, preferring one not in
  // `avoid` (the endpoints a retried batch failed on): while such an
  // endpoint is healthy but busy, none (wait for it); only when none is
  // healthy, an avoided one. Removed from free_slots_ when `take`. `closed_only`: never a half-open
  // endpoint's probe (retries are not probes).
  std::optional<size_t> PickSlot(TimePoint now, const std::vector<size_t>& avoid, bool take,
                                 bool closed_only = false);
  void StopCollectingIfNoSlot(TimePoint now);
  // With no slot able to take work, arms the sweep for what is queued or
  // arrives (so RefuseUnservable() answers it).
  void WatchWhileUnservable();
  // Retries, dead letters or 504s for the requests of a failed batch.
  // `error` is the internal failure (backend name and text); `summary` the
  // client-safe words for it, e.g. "no reply within 3000 ms".
  void HandleFailedBatch(size_t slot, std::vector<RequestPtr> batch, const Status& error,
                         std::string_view summary, TimePoint now);
  void DispatchRetries(TimePoint now);
  void ArmRetryTimer();
  void ExpireRetries(TimePoint now);
  void RecordOutcome(size_t slot, bool ok, TimePoint now);
  void LogBatch(size_t slot, size_t size, TimePoint now, const Status& error);
  void ArmProbeTimer(size_t endpoint);
  void EnsureSweep();
  void AnswerDropped(std::vector<RequestPtr>& dropped, TimePoint now);
  void CancelDelayTimer();
  // Retired: `batch`, due for a retry, to hand_over_ (see "Retirement").
  void HandOverRetry(std::vector<RequestPtr> batch);
  // How long synchronous requests count as flowing after one went to a slot.
  static constexpr SteadyClock::duration kSyncFlowWindow = std::chrono::seconds(1);
  // Wraps fn(DispatchGroup*) so it runs only while the group is alive.
  template <typename F>
  std::function<void()> Guarded(F fn);

  const Options options_;
  const size_t async_fill_max_;  // Options::async_fill_max_batch_size, 0 resolved
  Executor& ex_;
  DispatchQueue* queue_;  // on executor; Options::queue, null once retired
  std::atomic<bool> retired_{false};
  std::function<void(std::vector<RequestPtr>)> hand_over_;  // on executor; set when retired
  std::vector<Slot> slots_;
  std::vector<Endpoint> endpoints_;
  std::unique_ptr<std::atomic<bool>[]> slot_enabled_;  // mirrors Slot::enabled, any thread
  // Each slot's batch's expected end (µs on the clock's epoch, from the cost
  // model at dispatch); 0 while it has none or it was timed out. Any thread.
  std::unique_ptr<std::atomic<int64_t>[]> slot_end_us_;
  std::unique_ptr<std::atomic<int64_t>[]> slot_cost_us_;  // that batch's expected µs
  // When a batch with a synchronous request last went to a slot (µs on the
  // clock's epoch; 0 = never). Any thread.
  std::atomic<int64_t> last_sync_us_{0};
  std::vector<PendingRetry> retries_;           // on executor; ordered by ready_at
  std::deque<std::vector<RequestPtr>> handed_;  // on executor; Submit() order
  std::atomic<size_t> handed_requests_{0};      // requests in handed_
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
  std::atomic<int64_t> next_probe_ns_{-1};          // -1: no endpoint open
  std::unique_ptr<BatchCostModel> own_cost_model_;  // when Options gave none
  BatchCostModel* cost_model_ = nullptr;
  // Decayed requests/s popped, as of rate_at_ns_ (written on the executor,
  // read anywhere).
  std::atomic<double> dispatch_rate_{0};
  std::atomic<int64_t> rate_at_ns_{0};
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

// An outcome carrying only `status` (for errors), and the internal `detail`.
InferenceOutcome ErrorOutcome(Status status, std::string detail = {});

// The internal detail of a failure reported by `backend`: its own text,
// preceded by its name unless the text names it already; valid UTF-8 of at
// most kMaxFailureDetailBytes.
inline constexpr size_t kMaxFailureDetailBytes = 1'024;
std::string FailureDetail(const std::string& backend, const Status& error);

}  // namespace sluice
