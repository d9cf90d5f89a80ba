#include "common/log_throttle.h"

namespace sluice {

std::optional<uint64_t> LogThrottle::Allow(TimePoint now) {
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  int64_t last = last_us_.load(std::memory_order_relaxed);
  // Of the threads that find the interval over, exactly one wins the swap.
  if ((last == INT64_MIN || now_us - last >= interval_us_) &&
      last_us_.compare_exchange_strong(last, now_us, std::memory_order_relaxed)) {
    return held_back_.exchange(0, std::memory_order_relaxed);
  }
  held_back_.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

}  // namespace sluice
