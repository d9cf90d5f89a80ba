#include "simulation/virtual_executor.h"

#include <algorithm>

namespace sluice {

namespace {
int64_t ToNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint FromNs(int64_t ns) {
  return TimePoint(std::chrono::duration_cast<SteadyClock::duration>(std::chrono::nanoseconds(ns)));
}
}  // namespace

VirtualExecutor::VirtualExecutor()
    : start_(TimePoint{} + std::chrono::hours(1)), now_ns_(ToNs(start_)) {}

VirtualExecutor::~VirtualExecutor() {
  // Callbacks may own objects whose destructors post or cancel: move them
  // out before destroying them, outside the lock.
  std::deque<std::function<void()>> posted;
  std::vector<Slot> slots;
  {
    std::lock_guard lock(mu_);
    posted.swap(posted_);
    slots.swap(slots_);
    heap_.clear();
  }
}

TimePoint VirtualExecutor::Now() const { return FromNs(now_ns_.load(std::memory_order_relaxed)); }

void VirtualExecutor::Post(std::function<void()> fn) {
  if (!fn) return;  // nothing to run (and an empty function ends TakeNext)
  std::lock_guard lock(mu_);
  posted_.push_back(std::move(fn));
}

Executor::TimerId VirtualExecutor::RunAt(TimePoint when, std::function<void()> fn) {
  if (!fn) fn = [] {};  // keeps the id contract; an empty function would end TakeNext
  std::lock_guard lock(mu_);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.live = true;
  ++live_timers_;
  // A past due time is clamped to now: the timer then sorts by creation
  // among those already due.
  const int64_t when_ns = std::max(ToNs(when), now_ns_.load(std::memory_order_relaxed));
  heap_.push_back({when_ns, next_order_++, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return (static_cast<uint64_t>(s.generation) << 32) | slot;
}

bool VirtualExecutor::Cancel(TimerId id) {
  std::function<void()> fn;  // destroyed after the lock is released
  {
    std::lock_guard lock(mu_);
    const uint32_t slot = static_cast<uint32_t>(id & 0xffffffffu);
    const uint32_t generation = static_cast<uint32_t>(id >> 32);
    if (slot >= slots_.size()) return false;
    Slot& s = slots_[slot];
    if (!s.live || s.generation != generation) return false;
    fn = std::move(s.fn);
    ReleaseSlot(slot);
  }
  return true;
}

void VirtualExecutor::ReleaseSlot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.fn = nullptr;
  s.live = false;
  // Generation 0 is skipped so that no id is 0.
  if (++s.generation == 0) s.generation = 1;
  free_slots_.push_back(slot);
  --live_timers_;
}

size_t VirtualExecutor::pending_timers() const {
  std::lock_guard lock(mu_);
  return live_timers_;
}

std::function<void()> VirtualExecutor::TakeNext(int64_t end_ns) {
  std::lock_guard lock(mu_);
  if (!posted_.empty()) {
    std::function<void()> fn = std::move(posted_.front());
    posted_.pop_front();
    return fn;
  }
  while (!heap_.empty()) {
    const HeapEntry top = heap_.front();
    Slot& s = slots_[top.slot];
    const bool stale = !s.live || s.generation != top.generation;
    if (!stale && top.when_ns > end_ns) return {};
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
    if (stale) continue;
    std::function<void()> fn = std::move(s.fn);
    ReleaseSlot(top.slot);
    if (top.when_ns > now_ns_.load(std::memory_order_relaxed)) {
      now_ns_.store(top.when_ns, std::memory_order_relaxed);
    }
    return fn;
  }
  return {};
}

uint64_t VirtualExecutor::RunUntil(TimePoint end) {
  const int64_t end_ns = ToNs(end);
  uint64_t ran = 0;
  while (std::function<void()> fn = TakeNext(end_ns)) {
    fn();
    ++ran;
  }
  events_run_.fetch_add(ran, std::memory_order_relaxed);
  if (end_ns > now_ns_.load(std::memory_order_relaxed)) {
    now_ns_.store(end_ns, std::memory_order_relaxed);
  }
  return ran;
}

}  // namespace sluice
