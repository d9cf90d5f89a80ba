// ClaimLoop: a worker's batch source — the one place a worker batches. A
// dedicated thread claims WHOLE batches from the shared Redis queue
// (RedisBatchClaimer: wait for the group's TargetBatchSize() — the batch
// the load needs under adaptive batching, a full one under static — or
// max_batch_delay_us after the oldest arrival, never past the earliest
// deadline; no busy polling: a BLPOP on the wake list while the queue is
// empty, a local timed wait while a partial batch fills) whenever the
// group has room for one, and hands each to DispatchGroup::Submit(), which
// runs it whole on a free slot (no local queue, no second batching).
// While a batch fills, the loop looks again after FillNap() — when it is
// predicted full at the group's dispatch rate, at least every quarter of
// max_batch_delay_us, backing off while nothing arrives; naps of a second
// or more block on the wake list instead, so an enqueue brings a look at
// once — and then asks for the batch the group's collector would wait for
// at the depth it saw (BatchToWaitFor). So a partial batch leaves once it
// holds what the load needs, not only at max_batch_delay_us, as in one
// process; unlike the collector, the first claim after a batch asks for
// the adaptive target alone (the full-batch rule needs the depth, which
// only a claim reports).
// Answers go back through each request's
// completion: they are collected on the group's strand and sent with ONE
// CompleteAsync per strand turn, i.e. one script call (and one message per
// gateway) per batch. Requests that expired in the queue are answered 504 in
// one call as they are claimed. Asynchronous work fills a claim only up to
// the group's AsyncFillSize(), so that the slots finish in turn and a
// synchronous request waits for the next free slot, not a whole batch.
//
// Flow control: at most group->batch_room() claimed batches are held at
// once: one per available slot plus one per probing (half-open) endpoint,
// and none while every endpoint is open and cooling down, so that the queue
// stays in Redis for healthy workers. While every slot is busy and no
// claimed batch waits for one, one more is claimed shortly (ClaimLead())
// before the slot expected to free first does
// (DispatchGroup::NextFreeSlotAt), so that no slot idles for a claim's round
// trip after each batch; not once that batch has run twice its expected
// time (a slow or hung device leaves the queue to other workers).
//
// Leases: every batch it holds (claimed, not all answered yet) has its
// lease (one per batch) renewed every renew_interval_ms (lease / 4) from
// the claim thread, so a lease runs out only when this worker is gone,
// however long its batches take; the reaper then re-queues the batch's
// unanswered requests elsewhere within about a lease.
// A request re-queued that way (attempts > 0) was dispatched once already:
// like an in-process retry, only its total deadline bounds it here.
//
// Failures: while Redis is down a claim fails at once and the thread waits
// error_backoff_ms (stop-aware) before trying again. A CompleteAsync that
// fails for want of Redis (kUnavailable: down, or a Cluster master failing
// over) is sent again by the claim thread on each turn, each answer until
// its request's total deadline, so answers computed during an outage still
// reach their clients however long the failover takes while they wait;
// after that (or on any other failure) the answers are
// dropped and the requests stay leased: their batch's lease is renewed no
// more once every request of the batch has its answer, runs out, and the
// reaper re-queues them (see DESIGN: exactly one answer per request is kept
// by the complete script).
//
// Thread-safety: Start/Stop/Join from one thread; the getters from any.
// Ownership: every pointer in Options is borrowed and must outlive the loop
// and the completions of every request it pushed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/dispatch_group.h"
#include "redis/batch_claimer.h"
#include "tracing/tracer.h"

namespace sluice {

// How long a claim loop waits before it looks again at a batch still
// filling: until the batch is predicted full (`to_fill`, at the group's
// dispatch rate), but at most a quarter of `delay` (max_batch_delay_us);
// twice `last_nap` (itself capped at `delay`) when given — the queue did not
// grow since the last look, so arrivals have slowed; at least 200 µs; never
// past `left`, what is left of the delay.
SteadyClock::duration FillNap(SteadyClock::duration left, SteadyClock::duration to_fill,
                              SteadyClock::duration delay,
                              std::optional<SteadyClock::duration> last_nap);

class ClaimLoop {
 public:
  struct Options {
    redis::RedisBatchClaimer* claimer = nullptr;  // required
    DispatchGroup* group = nullptr;               // required; runs the claimed batches
    Executor* strand = nullptr;                   // required; the group's executor
    // Blocking waits (BLPOP on wake_key) only; its command timeout must
    // exceed claim_timeout_ms. Required; not owned.
    redis::RedisClient* wait_connection = nullptr;
    std::string wake_key;   // KeySpace::Wake() of the claimer's home shard
    std::string worker_id;  // stamped on results
    size_t max_batch_size = 32;
    int64_t max_batch_delay_us = 10'000;
    int64_t claim_timeout_ms = 500;  // longest single Claim() (stop latency)
    int64_t error_backoff_ms = 100;  // wait after a failed claim
    // How often the leases of held batches are renewed; well under the
    // claimer's lease_us (lease / 4). The claim thread checks at least every
    // claim_timeout_ms + 100 ms, so keep it above that.
    int64_t renew_interval_ms = 500;
    // A claim holding a sampled request becomes a "sluice.redis.claim" span
    // (a root, linked to its requests' spans, as a batch's is). Optional;
    // not owned.
    const tracing::Tracer* tracer = nullptr;
  };
  struct Stats {
    uint64_t batches = 0;           // batches claimed
    uint64_t requests = 0;          // requests claimed
    uint64_t expired = 0;           // answered 504 at claim
    uint64_t fill_waits = 0;        // claims that found a batch still filling
    uint64_t claim_errors = 0;      // failed claims (Redis down, script error)
    uint64_t complete_calls = 0;    // CompleteAsync calls
    uint64_t complete_errors = 0;   // failed complete calls (retried or left to the reaper)
    uint64_t complete_retries = 0;  // complete calls sent again after Redis was unavailable
    // Answers kept for a retry until their request's total deadline passed
    // (left to the reaper).
    uint64_t answers_expired_unsent = 0;
    uint64_t renew_calls = 0;   // lease renewals sent
    uint64_t renew_errors = 0;  // renewals that failed (Redis down)
  };

  explicit ClaimLoop(const Options& options);
  ~ClaimLoop();  // Stop() and Join()

  void Start();
  // Claims nothing more; returns at once (the thread ends within
  // claim_timeout_ms + one round trip).
  void Stop();
  void Join();

  // True once the thread has ended (after Stop()).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // Claimed batches not fully answered yet.
  size_t batches_in_flight() const { return state_->batches_in_flight.load(); }
  // Answers collected or sent but not yet acknowledged by Redis.
  size_t answers_in_flight() const { return state_->answers_in_flight.load(); }
  Stats stats() const;

 private:
  struct HeldLease {
    size_t shard = 0;
    size_t unanswered = 0;
  };
  // Shared with request completions and Redis callbacks.
  struct State {
    std::mutex mu;
    std::condition_variable cv;             // a batch finished, or stopping
    std::vector<redis::WireResult> outbox;  // GUARDED_BY(mu)
    // Leases of batches with requests not answered yet: lease id -> its
    // shard and how many are unanswered. GUARDED_BY(mu)
    std::unordered_map<std::string, HeldLease> held;
    // Answers whose complete call found Redis unavailable, each sent again
    // until its total_deadline; GUARDED_BY(mu).
    std::vector<redis::WireResult> retry;
    bool retry_closed = false;  // the claim thread has ended; GUARDED_BY(mu)
    std::atomic<size_t> batches_in_flight{0};
    std::atomic<size_t> answers_in_flight{0};
    std::atomic<uint64_t> complete_calls{0};
    std::atomic<uint64_t> complete_errors{0};
    std::atomic<uint64_t> complete_retries{0};
    std::atomic<uint64_t> answers_expired_unsent{0};
    std::atomic<uint64_t> renew_calls{0};
    std::atomic<uint64_t> renew_errors{0};
  };

  // A claim found a batch still filling: `depth` queued, and it must leave
  // by `until` (max_batch_delay_us after its oldest arrival, or earlier for
  // a deadline); the loop then waited `nap`.
  struct Filling {
    size_t depth = 0;
    TimePoint until;
    SteadyClock::duration nap{};
  };

  void Run();
  // Waits `nap` (FillNap) before the next look at a filling batch:
  // stop-aware; from a second up, a BLPOP on the wake list (bounded by
  // claim_timeout_ms) that an enqueue ends.
  void WaitWhileFilling(SteadyClock::duration nap);
  // Waits until a batch may be claimed; false when stopping.
  bool WaitForRoom();
  void Hand(redis::RedisBatchClaimer::Batch& batch);
  // The claim's span, when a request of `batch` is sampled.
  void TraceClaim(const redis::RedisBatchClaimer::Batch& batch, SteadyClock::duration took) const;
  // Renews the held leases when renew_interval_ms has passed (claim
  // thread; takes state_->mu).
  void RenewLeasesIfDue();
  // Sends the answers in State::retry again, and drops those whose total
  // deadline has passed (claim thread).
  void RetryFailedCompletes();
  // Sends the outbox: one complete call per queue shard.
  static void Flush(const std::shared_ptr<State>& state, redis::RedisBatchClaimer* claimer);
  // One complete call; answers that find Redis unavailable go to
  // State::retry (those with a known total deadline).
  static void CompleteOrKeep(const std::shared_ptr<State>& state, redis::RedisBatchClaimer* claimer,
                             std::vector<redis::WireResult> out);

  const Options options_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> batches_{0}, requests_{0}, expired_{0}, claim_errors_{0}, fill_waits_{0};
  std::chrono::steady_clock::time_point next_renewal_{};  // claim thread only
  double claim_us_ = 0;  // a claim's round trip, smoothed; claim thread only
  // How long before a slot frees the next batch is claimed: twice a
  // claim's round trip, 0.2..5 ms (claim thread).
  SteadyClock::duration ClaimLead() const;
  // With every slot busy: how long until the next batch is due to be
  // claimed ahead (<= 0: now); nullopt while the batch expected to end
  // first has run twice its expected time (claim thread).
  std::optional<SteadyClock::duration> TimeToClaimAhead() const;
  // The claim WaitForRoom() allowed is one ahead of a free slot; an empty
  // one then waits on the loop's condition instead of the wake list, whose
  // tokens are for workers that can run a batch now (claim thread).
  bool claiming_ahead_ = false;
  std::thread thread_;
};

}  // namespace sluice
