// PendingRequests: a gateway's table of requests queued in Redis and waiting
// for their answer on the gateway's result channel (id -> RequestPtr).
//
// Life of an entry. Add() when the request is handed to the enqueue script;
// then exactly one of:
//   - MarkEnqueued(): the script queued it; from now on Deliver() (a result
//     from a worker or the reaper) or ExpireUntil() (its total deadline
//     passed: 504) completes it, whichever comes first;
//   - Remove(): the script refused it or Redis was down; the caller answers.
// A result that arrives before its enqueue reply was processed (the two come
// over different connections, so threads may see them in either order) is
// held and delivered by MarkEnqueued(), so the enqueue callback's writes to
// the request (rate-limit headers) happen before its completion. Results for
// ids not in the table (answered already, expired, another run's) are
// counted as dropped.
//
// Each request is completed at most once by the table (and
// InferenceRequest::Complete() is itself exactly-once).
//
// Thread-safety: thread-safe; one short mutex. Completions run on the
// calling thread, outside the lock. Never blocks on I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/request.h"
#include "redis/request_codec.h"

namespace sluice::redis {

class PendingRequests {
 public:
  struct Stats {
    uint64_t delivered = 0;        // requests completed by a result
    uint64_t dropped_results = 0;  // results for unknown or finished ids
    uint64_t expired = 0;          // requests answered 504 by ExpireUntil()
  };

  // Registers `req`, to expire at req->total_deadline. False (nothing
  // registered) when its id is already pending.
  bool Add(const RequestPtr& req);

  // The enqueue script queued `id`: it may now be completed. Delivers a
  // result that arrived early. No-op for an unknown id.
  void MarkEnqueued(const std::string& id);

  // True iff `id` is pending and its enqueue reply was processed.
  bool IsEnqueued(const std::string& id) const;

  // Takes `id` out without completing it (enqueue refused); null if absent.
  RequestPtr Remove(const std::string& id);

  // Completes the request `result` answers, or counts the result dropped.
  void Deliver(WireResult&& result);

  // Answers 504 every enqueued request whose total deadline is <= now.
  // Returns how many. Requests still waiting for their enqueue reply are
  // left to that reply (it comes within the command timeout).
  size_t ExpireUntil(TimePoint now);

  // Takes every entry out (shutdown); the caller answers them.
  std::vector<RequestPtr> TakeAll();

  size_t size() const;
  // Asynchronous requests (InferenceRequest::async) of `model` registered
  // now: queued in Redis, on a worker, or waiting for their enqueue reply.
  size_t async_waiting(const std::string& model) const;
  Stats stats() const;

 private:
  struct Entry {
    RequestPtr request;
    bool enqueued = false;
    std::optional<WireResult> early;  // a result seen before MarkEnqueued()
  };
  using Deadline = std::pair<TimePoint, std::string>;

  // Takes `it`'s request out of entries_ and the async counts. REQUIRES:
  // mu_ held.
  RequestPtr TakeLocked(std::unordered_map<std::string, Entry>::iterator it);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, size_t> async_;   // model -> async entries; GUARDED_BY(mu_)
  // Min-heap of (total deadline, id); stale items (answered ids) are
  // skipped when they reach the top.
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>>
      deadlines_;  // GUARDED_BY(mu_)

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> expired_{0};
};

}  // namespace sluice::redis
