// AsyncBacklog: holds asynchronous requests (InferenceRequest::async) back
// in front of a queue that cannot keep them apart from the synchronous ones
// (a gateway's Redis queue, where the queue bound, admission's depth and
// every gateway see one depth), and releases them into it while it is
// shallow: async work fills the capacity synchronous traffic leaves idle,
// and a backlog of it never fills the queue synchronous requests need,
// nor makes admission refuse them.
//
// Push() of a synchronous request goes straight to the queue. An async one
// is held, up to max_held (then kUnavailable), ordered by queue_order();
// every tick_us while any is held, the earliest are released into the
// queue until its Depth() reaches release_below() (read at each tick: e.g.
// a couple of batches per healthy device; 0 releases nothing). A held
// request whose total deadline passes is answered 504; one withdrawn
// (its client left) 499. Close() answers every held request 503 and
// refuses later async pushes (shutdown: nobody would release them).
//
// Depth() is the queue's plus the held requests; AsyncDepth() the queue's
// plus the held ones (so admission weighs only the synchronous requests). QueuedAhead() adds
// every held request for a deadline later than the earliest held one (a new
// async request waits behind the backlog; a synchronous one, whose
// deadline comes first, behind none of it), so admission refuses async work
// the backlog would make miss its deadline, as in one process.
//
// Thread-safe; one mutex, never held while pushing or completing. The
// queue and executor must outlive this object; held requests are not
// answered by the destructor (Close() first).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/clock.h"
#include "common/status.h"
#include "core/request_queue.h"

namespace sluice {

class AsyncBacklog final : public FrontDoorQueue {
 public:
  struct Options {
    FrontDoorQueue* queue = nullptr;        // required; not owned
    Executor* executor = nullptr;           // required: the ticks; not owned
    size_t max_held = 100'000;              // >= 1
    std::function<size_t()> release_below;  // required
    Micros tick{5'000};                     // > 0
    // Optional: asks the queue to re-read its Depth() (one the workers
    // drain elsewhere); called at a tick that released nothing while
    // requests are held, so that the next one sees the room made.
    std::function<void()> refresh_depth;
  };

  struct Stats {
    uint64_t held = 0;      // waiting here now
    uint64_t released = 0;  // pushed into the queue so far
    uint64_t expired = 0;   // answered 504 here
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<AsyncBacklog>> Create(const Options& options);
  ~AsyncBacklog() override;

  Status Push(RequestPtr req) override;
  size_t Depth() const override;
  size_t AsyncDepth() const override;
  size_t QueuedAhead(TierIndex tier, TimePoint deadline) const override;
  void Withdraw(const RequestPtr& req) override;

  void Close();
  Stats stats() const;

 private:
  using Order = std::pair<TimePoint, uint64_t>;  // (deadline, arrival sequence)
  struct Held {
    RequestPtr req;
    Order by_order, by_expiry;
  };

  explicit AsyncBacklog(const Options& options) : options_(options) {}
  void Tick();
  // Schedules a tick unless one is due. REQUIRES: mu_ held.
  void ArmLocked();
  // Takes `it` out of every index. REQUIRES: mu_ held.
  RequestPtr TakeLocked(std::unordered_map<const InferenceRequest*, Held>::iterator it);

  const Options options_;
  mutable std::mutex mu_;
  uint64_t next_ = 0;                                        // guarded by mu_
  std::unordered_map<const InferenceRequest*, Held> held_;   // guarded by mu_
  std::map<Order, const InferenceRequest*> order_, expiry_;  // guarded by mu_
  Executor::TimerId timer_ = 0;                              // guarded by mu_
  bool armed_ = false, closed_ = false;                      // guarded by mu_
  uint64_t released_ = 0, expired_ = 0;                      // guarded by mu_
};

}  // namespace sluice
