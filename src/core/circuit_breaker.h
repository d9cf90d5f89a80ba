// CircuitBreaker: whether one accelerator endpoint should get work.
//
// Closed (normal): every batch outcome is recorded. The breaker opens after
// `consecutive_failures` failed batches in a row, or when at least
// `ratio_min_batches` of the last `ratio_window` batches ran and the failed
// fraction reached `failure_ratio`. Open: the endpoint pulls no work for
// `open_cooldown_ms`; then it is half-open and may run ONE probe batch. A
// probe that succeeds closes the breaker (history cleared); one that fails
// opens it again with the cooldown doubled, up to `max_cooldown_ms`.
//
// Only batch-level failures count (connection refused, 5xx, timeout,
// malformed reply); a per-item error is an answer, not a failure.
//
// Not thread-safe: the dispatch group drives it from its strand. state() is
// also readable from other threads (a relaxed snapshot for health pages).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>

#include "common/clock.h"
#include "common/status.h"

namespace sluice {

enum class BreakerState : uint8_t { kClosed, kOpen, kHalfOpen };
const char* BreakerStateName(BreakerState state);  // "closed", "open", "half_open"

class CircuitBreaker {
 public:
  struct Options {
    int consecutive_failures = 5;      // failed batches in a row that open it; >= 1
    double failure_ratio = 0.5;        // failed fraction of the window that opens it; (0, 1]
    int ratio_window = 20;             // batches the ratio looks at; >= 1
    int ratio_min_batches = 10;        // batches needed before the ratio applies; 1..ratio_window
    int64_t open_cooldown_ms = 1'000;  // first pause before a probe; >= 1
    // Cap of the doubling cooldown; >= open_cooldown_ms. The default keeps
    // recovery within cooldown + one batch of a backend's return.
    int64_t max_cooldown_ms = 1'000;

    bool operator==(const Options&) const = default;
  };
  static Status Validate(const Options& options);

  // REQUIRES: Validate(options).ok().
  explicit CircuitBreaker(const Options& options) : options_(options) {}
  CircuitBreaker(CircuitBreaker&& other) noexcept;

  BreakerState state() const { return state_.load(std::memory_order_relaxed); }
  // When an open breaker turns half-open (meaningful while open).
  TimePoint reopens_at() const { return reopens_at_; }

  // True when the endpoint may start a batch now. In the open state this
  // turns the breaker half-open once the cooldown passed. A half-open
  // breaker allows one batch (the probe) until its outcome is recorded.
  bool Allow(TimePoint now);
  // Marks the probe as started (half-open only; further Allow() is false).
  void OnDispatch();

  // Records a batch outcome. Returns true when the state changed.
  bool OnSuccess(TimePoint now);
  bool OnFailure(TimePoint now);

  uint64_t times_opened() const { return times_opened_; }

 private:
  void Open(TimePoint now);

  Options options_;
  std::atomic<BreakerState> state_{BreakerState::kClosed};
  int consecutive_ = 0;
  std::deque<bool> window_;  // true = failed; newest at the back
  int window_failures_ = 0;
  bool probe_in_flight_ = false;
  int64_t cooldown_ms_ = 0;  // the current cooldown (0 = not opened yet)
  TimePoint reopens_at_{};
  uint64_t times_opened_ = 0;
};

}  // namespace sluice
