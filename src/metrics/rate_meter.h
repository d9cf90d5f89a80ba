// Sliding-window meters for dashboards and load-aware decisions:
// RateMeter (events per second) and BusyMeter (fraction of time busy, e.g.
// accelerator utilisation).
//
// Both count into a ring of per-second buckets keyed by the second number
// since construction (second_ring.h) and report over the last
// `window_seconds` COMPLETE seconds, so a reading changes once per second and
// does not dip while the current second is still filling. Until
// `window_seconds` seconds have passed, the window is the complete seconds
// since construction (at least 1 s), so during the first second both read 0.
//
// Thread-safety. All methods are thread-safe and lock-free (a
// compare-exchange loop on one atomic word per update); they never block.
// Ownership: `clock` is not owned and must outlive the meter.
// Errors: window_seconds < 1 throws std::invalid_argument (a programming
// error, at setup time).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "common/clock.h"
#include "metrics/second_ring.h"

namespace sluice::metrics {

// Events per second, e.g. requests/s or tokens/s. At most 2^32 - 1 events
// are counted per second (more saturate).
class RateMeter {
 public:
  // REQUIRES: clock != nullptr.
  explicit RateMeter(const Clock* clock, int window_seconds = 10);

  // Counts `n` events at the current time.
  void Mark(uint64_t n = 1);

  // Events in the last window_seconds complete seconds divided by the window
  // length (see the file comment for the first seconds).
  double PerSecond() const;

 private:
  const Clock* const clock_;
  SecondRing ring_;
};

// Fraction of time busy. AddBusy(d), called when a piece of work of length
// `d` ends, attributes the busy time to the seconds the work actually
// covered, [now - d, now), split at second boundaries — so a 3 s batch
// counts 1 s in each of three seconds instead of 3 s in the last one. Busy
// time is kept in microseconds; at most 4294 s of busy time per second
// (i.e. 4294 fully busy slots) are counted.
class BusyMeter {
 public:
  // REQUIRES: clock != nullptr.
  explicit BusyMeter(const Clock* clock, int window_seconds = 10);

  // Records work that ran for `d` and ended now. Parts older than the window
  // or before construction are dropped; d <= 0 is ignored.
  void AddBusy(std::chrono::steady_clock::duration d);

  // Busy time in the window / (window length * slots), clamped to 0..1.
  // `slots` is the number of units that can be busy at once (accelerator
  // slots of a model); 0 yields 0.
  double BusyFraction(size_t slots) const;

 private:
  const Clock* const clock_;
  SecondRing ring_;
};

}  // namespace sluice::metrics
