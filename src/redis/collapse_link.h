// CollapseLink: request collapsing across gateways. The queue a gateway's
// RequestCollapser (core/request_collapser.h) pushes its carriers into, in
// front of the model's RedisRequestQueue: identical requests in flight at
// several gateways at the same time run as one batch item.
//
// Each carrier travels as a link, an internal request of its own id. Its
// result cache key names one Redis key, sluice:collapse:{key}: the carrier
// in flight for that key anywhere ("priority deadline µs|tier|gateway|link
// id"), and a list sluice:collapse:{key}:w of the links of other gateways
// waiting for one ("carrier link|gateway|link"). Pushing a carrier runs one
// script, atomically:
//   - attach: another gateway's carrier is in flight, and this one would
//     not be served before it: its priority deadline is not later (and in
//     strict ordering it is of the same tier). The link joins the waiters and waits
//     in this gateway's PendingRequests for the answer that gateway
//     forwards on this gateway's result channel. Nothing is queued.
//   - own: otherwise. The key names this link (replacing another that
//     would be served later), which goes to the model's queue.
// When an owned link ends, whatever its outcome, one script takes its
// waiters and frees the key if it still names it (so an identical request
// arriving later owns anew), and the outcome is published to each waiting
// gateway under its waiter's id; a failure is marked kForwardedFailure. A
// waiting link that gets a forwarded failure does not pass it on: before
// its total deadline it is pushed again (it attaches to another carrier,
// or owns), since the failure was the other gateway's (its carrier's
// deadline, a withdrawal, a shutdown). Everything else completes the
// carrier as a local answer would.
//
// Withdraw(carrier) (the collapser's last member left): a waiting link
// leaves the waiters and ends 499; an owned link is withdrawn from the
// queue only if no other gateway waits for it (one script: no waiters, so
// the key is freed), else it runs on for them.
//
// Keys expire with the carrier's total deadline, so a gateway that dies
// with a carrier in flight blocks nobody for longer: its waiters are
// answered 504 at their own deadlines.
//
// Thread-safety: thread-safe. Ownership: connection, queue and pending are
// not owned and must outlive the link and every callback of its pushes.
// Blocking: never.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/request_queue.h"
#include "redis/client.h"
#include "redis/keys.h"
#include "redis/pending_requests.h"

namespace sluice::redis {

class CollapseLink final : public FrontDoorQueue {
 public:
  // The reason of a failure forwarded to a waiting gateway.
  static constexpr const char* kForwardedFailure = "collapse_carrier_failed";

  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;
    // The model's queue (a gateway: its AsyncBacklog in front of the
    // RedisRequestQueue); required; not owned.
    FrontDoorQueue* queue = nullptr;
    PendingRequests* pending = nullptr;  // the gateway's; required; not owned
    std::string gateway_id;              // this gateway's; a valid key part
    QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst;
    const Clock* clock = nullptr;  // default: SystemClock()
  };

  struct Stats {
    uint64_t attached = 0;        // carriers that waited for another gateway's
    uint64_t remote_answers = 0;  // of those, answered with its batch item
    uint64_t owned = 0;           // carriers queued here (some other gateways waited for)
    uint64_t forwarded = 0;       // successful answers published to waiting links elsewhere
    uint64_t retried = 0;         // waiting links pushed again after a forwarded failure
    uint64_t kept = 0;            // owned carriers not withdrawn: other gateways waited
    uint64_t redis_errors = 0;    // scripts that failed (the carrier was queued here)
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<CollapseLink>> Create(const Options& options);
  ~CollapseLink() override;

  // Takes a carrier (REQUIRES: cache_key non-empty, deadlines set, on_complete
  // set). Always OK: the carrier is completed exactly once, later.
  Status Push(RequestPtr carrier) override;
  size_t Depth() const override;
  size_t AsyncDepth() const override;
  size_t QueuedAhead(TierIndex tier, TimePoint deadline) const override;
  void Withdraw(const RequestPtr& carrier) override;

  Stats stats() const;

 private:
  struct Core;
  explicit CollapseLink(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::shared_ptr<Core> core_;
};

}  // namespace sluice::redis
