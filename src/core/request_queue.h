// RequestQueue: the per-model queue between the front door and the
// dispatchers. One instance per model.
//
// Order: earliest priority deadline first (EDF) across tiers, ties broken by
// tier priority then arrival; or strict tier priority (EDF within a tier).
// The priority deadline is arrival + the tier's budget
// (InferenceRequest::priority_deadline): a client's shorter deadline only
// makes its own request expire sooner, it never moves it ahead
// (MemoryQueue; RedisRequestQueue still orders by the dispatch deadline,
// as the wire format carries only that).
// Bounded: Push() fails with kUnavailable when full, and the caller keeps
// ownership of the rejected request.
//
// Thread-safe; no call blocks beyond a short internal lock. The interface
// is split by who uses it: FrontDoorQueue (InferenceService) and
// DispatchQueue (DispatchGroup); RequestQueue is both (MemoryQueue). A
// gateway's RedisRequestQueue (src/redis) is a FrontDoorQueue only: workers
// pop from Redis.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/request.h"

namespace sluice {

enum class QueueOrdering {
  kEarliestDeadlineFirst,  // default: deadlines across tiers, no starvation
  kStrictPriority,         // highest tier first, EDF within a tier
};

// What the front door needs from a model's queue: hand a request over, see
// how full the queue is and how much is ahead of a new request, and say when
// a client left. Implemented by MemoryQueue (one process) and by
// RedisRequestQueue (a gateway, whose queue lives in Redis).
class FrontDoorQueue {
 public:
  virtual ~FrontDoorQueue() = default;

  // Takes `req` iff OK is returned. kUnavailable when the queue is full or
  // closed. May run a notification registered with NotifyAtDepth() on the
  // calling thread, after the internal lock is released.
  virtual Status Push(RequestPtr req) = 0;

  virtual size_t Depth() const = 0;
  // How many of Depth() are asynchronous requests (InferenceRequest::async),
  // which wait behind the synchronous ones; 0 for a queue that takes none.
  virtual size_t AsyncDepth() const { return 0; }
  // Roughly how many queued requests will be dispatched before a new
  // request of `tier` with priority deadline `deadline` (for admission's
  // wait estimate): strict mode counts tiers of equal or higher priority;
  // EDF counts the queued requests whose priority deadline is earlier.
  virtual size_t QueuedAhead(TierIndex tier, TimePoint deadline) const = 0;

  // The client of `req` (pushed here earlier) went away; req->cancelled()
  // is set. A queue whose dispatcher drops cancelled requests when it pops
  // them does nothing (the default: MemoryQueue). One that cannot see them
  // then (the queue lives elsewhere) removes the request now if it is still
  // queued and answers it 499 (kCancelled); one already dispatched is left
  // alone (its answer goes nowhere). Never blocks.
  virtual void Withdraw(const RequestPtr& req) {}
};

// What a dispatcher (DispatchGroup) needs from the queue it drains.
class DispatchQueue {
 public:
  virtual ~DispatchQueue() = default;

  // Moves up to `max` requests, in queue order, into `batch`. Requests met on
  // the way whose dispatch deadline is <= now, or whose client went away,
  // are moved into `dropped` instead and do not count toward `max`.
  virtual void PopBatch(size_t max, TimePoint now, std::vector<RequestPtr>* batch,
                        std::vector<RequestPtr>* dropped) = 0;

  // Moves every request whose dispatch deadline is <= now into `expired`.
  virtual void RemoveExpired(TimePoint now, std::vector<RequestPtr>* expired) = 0;

  // Moves everything into `out` (shutdown).
  virtual void RemoveAll(std::vector<RequestPtr>* out) = 0;

  virtual size_t Depth() const = 0;
  // How many of Depth() are asynchronous requests; 0 for a queue that
  // takes none.
  virtual size_t AsyncDepth() const { return 0; }
  // Arrival of the longest-waiting request; nullopt when empty.
  virtual std::optional<TimePoint> OldestArrival() const = 0;
  // Earliest priority deadline among queued requests; nullopt when empty.
  virtual std::optional<TimePoint> EarliestDeadline() const = 0;

  // One-shot wake-up: registers `fn` to run after the Push() that brings the
  // depth to >= min_depth, replacing any earlier registration. Returns false
  // (and registers nothing) if the depth is already >= min_depth.
  virtual bool NotifyAtDepth(size_t min_depth, std::function<void()> fn) = 0;
  virtual void ClearNotify() = 0;
};

// Both sides in one process: the front door pushes, a dispatcher pops.
class RequestQueue : public FrontDoorQueue, public DispatchQueue {
 public:
  size_t Depth() const override = 0;
  size_t AsyncDepth() const override = 0;
};

}  // namespace sluice
