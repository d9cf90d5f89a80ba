// VirtualExecutor: a discrete-event Executor and Clock in virtual time, for
// running the real scheduler (`sluice simulate`, `sluice plan`) through hours
// of traffic in seconds of wall time.
//
// Time never moves by itself: RunUntil(end) runs every callback that is due
// up to `end`, advancing Now() to each timer's due time as it fires, and
// leaves Now() at `end`. Order: callbacks posted with Post() run first, in
// posting order, at the current time; then the earliest timer (ties: the
// one scheduled first). A callback may post or schedule more work, which
// RunUntil() picks up in the same order. Virtual time starts one hour after
// the steady clock's epoch (so that no deadline is the "unset" epoch).
//
// Costs: Post O(1); RunAt and each timer fired O(log n); Cancel O(1) (its
// heap entry is skipped when it surfaces). The slots of fired and cancelled
// timers are reused, so memory follows the timers pending.
//
// Thread-safety: Post, RunAt, Cancel and Now are thread-safe (one mutex;
// Now is an atomic read), as the Executor contract requires, so a backend
// may complete from another thread. RunUntil must be called from one thread
// at a time (the run loop); callbacks run on it, never inside Post/RunAt,
// and never with the mutex held. Ownership: callbacks are owned until they
// run or are cancelled; the ones still pending at destruction are destroyed
// without running.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "common/clock.h"

namespace sluice {

class VirtualExecutor final : public Executor, private Clock {
 public:
  VirtualExecutor();
  ~VirtualExecutor() override;
  VirtualExecutor(const VirtualExecutor&) = delete;
  VirtualExecutor& operator=(const VirtualExecutor&) = delete;

  // Executor.
  const Clock& clock() const override { return *this; }
  void Post(std::function<void()> fn) override;
  // A `when` in the past runs at the current time, after the callbacks
  // already due. Ids are never 0.
  TimerId RunAt(TimePoint when, std::function<void()> fn) override;
  // True iff the timer was pending (it will now never run).
  bool Cancel(TimerId id) override;

  // Clock: the virtual now.
  TimePoint Now() const override;
  // When virtual time began (Now() before the first RunUntil()).
  TimePoint start() const { return start_; }

  // Runs every callback due at or before `end` (see the file comment), then
  // sets Now() to `end` if that is later. Returns the callbacks run.
  // REQUIRES: not called from inside a callback.
  uint64_t RunUntil(TimePoint end);

  // Callbacks run so far (posts and timers; any thread).
  uint64_t events_run() const { return events_run_.load(std::memory_order_relaxed); }
  // Timers scheduled and not yet run or cancelled (any thread).
  size_t pending_timers() const;

 private:
  // A heap entry; `slot` indexes slots_, `generation` tells a stale entry
  // (its timer was cancelled, or fired, and the slot reused).
  struct HeapEntry {
    int64_t when_ns;
    uint64_t order;  // creation order: ties run first-scheduled first
    uint32_t slot;
    uint32_t generation;
  };
  struct Later {  // min-heap on (when, order)
    bool operator()(const HeapEntry& a, const HeapEntry& b) const {
      return a.when_ns != b.when_ns ? a.when_ns > b.when_ns : a.order > b.order;
    }
  };
  struct Slot {
    std::function<void()> fn;
    uint32_t generation = 1;  // bumped whenever the slot is released
    bool live = false;
  };

  // The next callback due at or before end_ns, or an empty function (then
  // nothing is due). Advances now_ns_ to a fired timer's time.
  std::function<void()> TakeNext(int64_t end_ns);
  void ReleaseSlot(uint32_t slot);  // REQUIRES: mu_ held

  const TimePoint start_;
  std::atomic<int64_t> now_ns_;  // since the steady clock's epoch
  std::atomic<uint64_t> events_run_{0};

  mutable std::mutex mu_;
  std::deque<std::function<void()>> posted_;  // GUARDED_BY(mu_)
  std::vector<HeapEntry> heap_;               // GUARDED_BY(mu_)
  std::vector<Slot> slots_;                   // GUARDED_BY(mu_)
  std::vector<uint32_t> free_slots_;          // GUARDED_BY(mu_)
  uint64_t next_order_ = 0;                   // GUARDED_BY(mu_)
  size_t live_timers_ = 0;                    // GUARDED_BY(mu_)
};

}  // namespace sluice
