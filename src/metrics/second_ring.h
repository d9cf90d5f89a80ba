// SecondRing: per-second counters over a sliding window of whole seconds;
// the storage behind RateMeter and BusyMeter (rate_meter.h). An
// implementation detail of this folder, not for use elsewhere.
//
// Seconds are numbered from the ring's construction: second k covers
// [origin + k s, origin + (k+1) s). The ring keeps window_seconds + 1 slots:
// the second in progress plus `window_seconds` complete ones. Each slot is a
// single 64-bit atomic word holding (second number << 32 | count), so a slot
// that still holds an old second is reset and incremented by one
// compare-exchange: no increment is lost to a concurrent reset. Consequences
// of the packing: a count saturates at 2^32 - 1 per second, and second
// numbers wrap after 136 years.
//
// Thread-safety: all methods are thread-safe and lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "common/clock.h"

namespace sluice::metrics {

class SecondRing {
 public:
  static constexpr uint64_t kMaxCount = 0xffff'ffffu;

  // REQUIRES: window_seconds >= 1 (else throws std::invalid_argument).
  SecondRing(TimePoint origin, int window_seconds);
  SecondRing(const SecondRing&) = delete;
  SecondRing& operator=(const SecondRing&) = delete;

  TimePoint origin() const { return origin_; }
  int window_seconds() const { return window_seconds_; }

  // The number of the second containing `t`; 0 for times before the origin.
  uint64_t SecondAt(TimePoint t) const;

  // Adds `n` to second `second`. Dropped if that second's slot was already
  // reused by a later second (a caller that stalled for longer than the
  // window); callers stay within [current - window_seconds, current].
  void Add(uint64_t second, uint64_t n);

  struct WindowSum {
    uint64_t total = 0;  // sum over the complete seconds of the window
    int seconds = 1;     // how many seconds the window spans, >= 1
  };
  // Sums the complete seconds before `current`: the last window_seconds of
  // them, or all of them while fewer have passed since the origin. During
  // second 0 nothing is complete: {0, 1}.
  WindowSum SumComplete(uint64_t current) const;

 private:
  const TimePoint origin_;
  const int window_seconds_;
  const size_t size_;  // window_seconds_ + 1
  const std::unique_ptr<std::atomic<uint64_t>[]> slots_;
};

}  // namespace sluice::metrics
