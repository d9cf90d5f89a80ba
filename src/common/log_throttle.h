// LogThrottle: lets a warning through at most once per interval and counts
// the ones it held back, so that an event repeated thousands of times a
// second (a failing backend, a flood of bad credentials, accept() out of
// descriptors) costs one log line per interval, not one per event.
//
// Thread-safe and lock-free: Allow() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "common/clock.h"

namespace sluice {

class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(10))
      : interval_us_(std::chrono::duration_cast<std::chrono::microseconds>(interval).count()) {}

  // Counts one event at `now`. When it may be logged (the first event, or
  // the first one `interval` after the last logged one), returns how many
  // events were held back since that last one (0 or more); otherwise
  // nullopt.
  std::optional<uint64_t> Allow(TimePoint now = SteadyClock::now());

 private:
  const int64_t interval_us_;
  std::atomic<int64_t> last_us_{INT64_MIN};  // when the last event was let through
  std::atomic<uint64_t> held_back_{0};
};

}  // namespace sluice
