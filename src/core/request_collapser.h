// RequestCollapser: identical requests that wait at the same time take one
// place in their model's queue and one item in one batch; every one of them
// gets the answer.
//
// Requests are identical when their cache_key (core/result_cache.h) is: the
// same model, version, input and parameters. InferenceService sets it, for
// the requests whose answer may be shared (see there).
//
// The first request of a key starts a group. The group's carrier, an
// internal request made from it (same tier, input, parameters and deadlines,
// its own id, nothing charged), goes into the queue in its place. A later
// request with the same key joins the group while the carrier is unanswered
// and never enters the queue. When the carrier's answer comes, every member
// still waiting gets a copy, under its own request_id, with its queue wait
// counted from its own arrival.
//
// What each member keeps of its own:
// - Its deadline: at its total_deadline a member that has no answer yet is
//   answered 504 alone (a timer on the executor).
// - Its client: a member that leaves (Leave) is answered 499 alone; the
//   carrier is withdrawn only when no member is left.
// - Its priority: a request the queue would serve before a carrier still
//   waiting in it (an earlier priority deadline; in strict ordering, another
//   tier) does not join that group; it starts a new group, which later
//   requests join.
// A carrier answered 504 for its own deadline while members with a later
// total deadline wait is replaced by a new carrier made from the most
// urgent of those; the others keep waiting for their own deadline.
// A request whose client already left (cancelled) joins nothing.
//
// Thread-safe; one mutex, never held while pushing to the queue or
// completing a request. Completions run on the thread that completes the
// carrier, or on the executor (deadlines). The queue and executor must
// outlive this object; requests still in groups when it is destroyed are
// never answered by it (callers drain the queue first).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/request.h"
#include "core/request_queue.h"

namespace sluice {

// An internal request standing for `like` (a carrier, or a carrier's
// stand-in elsewhere): its tier and principal, model, input, parameters,
// arrival, deadlines, cache key and async flag; its own id; admitted;
// charged nothing (its members were). No completion set.
RequestPtr MakeStandIn(const InferenceRequest& like);

class RequestCollapser {
 public:
  struct Options {
    FrontDoorQueue* queue = nullptr;  // the model's queue; required; not owned
    Executor* executor = nullptr;     // runs the members' deadline timers; required; not owned
    // The queue's order: strict ordering serves tiers apart, so a request
    // joins only a queued carrier of its own tier.
    QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst;
  };

  static Result<std::unique_ptr<RequestCollapser>> Create(const Options& options);
  ~RequestCollapser();

  RequestCollapser(const RequestCollapser&) = delete;
  RequestCollapser& operator=(const RequestCollapser&) = delete;

  // Joins `req` to a group of its key whose carrier it need not wait longer
  // for (see the class comment), the newest such. On true, `admit` ran first (while no other
  // thread can see `req` yet) and the group will complete `req` exactly
  // once. On false nothing happened: no group to join.
  // REQUIRES: req->cache_key non-empty; its deadlines set.
  bool TryJoin(const RequestPtr& req, const std::function<void()>& admit);

  // Starts a group for `req` (or joins one that formed since TryJoin) and
  // pushes its carrier. OK: the group will complete `req` exactly once.
  // Error: the queue refused the carrier (kUnavailable), or `req`'s client
  // left (kCancelled); `req` was not taken, and members that joined
  // meanwhile are answered with the queue's error.
  // REQUIRES: as TryJoin; req->admitted set.
  Status Start(const RequestPtr& req);

  // `req`'s client went away: if `req` waits in a group it is answered 499
  // (kCancelled) and true is returned; false when it is in none.
  bool Leave(const RequestPtr& req);

  // Requests answered with another's batch item instead of their own, so
  // far (successful answers only: an item that ran). A carrier answered
  // with outcome.collapsed set (its stand-in waited for another gateway's
  // item) shares it with every member, the one it was made from included.
  uint64_t collapsed() const;
  // Groups waiting for an answer now, and the requests in them.
  size_t groups() const;
  size_t waiting() const;

 private:
  struct Member {
    RequestPtr req;
    Executor::TimerId timer = 0;
  };
  struct Group {
    std::string key;
    RequestPtr carrier;     // the one whose completion answers the members
    std::string origin_id;  // the member the carrier was made from
    std::vector<Member> members;
    bool joinable = true;  // false once it ended
  };
  using GroupPtr = std::shared_ptr<Group>;
  // The state callbacks (carrier completions, timers) reach, through weak
  // pointers: they may run after this object is gone.
  struct Shared;

  explicit RequestCollapser(const Options& options);

  std::shared_ptr<Shared> shared_;
};

}  // namespace sluice
