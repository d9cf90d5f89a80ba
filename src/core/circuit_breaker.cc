#include "core/circuit_breaker.h"

#include <algorithm>

namespace sluice {

const char* BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

Status CircuitBreaker::Validate(const Options& o) {
  if (o.consecutive_failures < 1)
    return InvalidArgument("breaker consecutive_failures must be >= 1");
  if (!(o.failure_ratio > 0 && o.failure_ratio <= 1)) {
    return InvalidArgument("breaker failure_ratio must be in (0, 1]");
  }
  if (o.ratio_window < 1) return InvalidArgument("breaker ratio_window must be >= 1");
  if (o.ratio_min_batches < 1 || o.ratio_min_batches > o.ratio_window) {
    return InvalidArgument("breaker ratio_min_batches must be in 1..ratio_window");
  }
  if (o.open_cooldown_ms < 1) return InvalidArgument("breaker open_cooldown_ms must be >= 1");
  if (o.max_cooldown_ms < o.open_cooldown_ms) {
    return InvalidArgument("breaker max_cooldown_ms must be >= open_cooldown_ms");
  }
  return Status::Ok();
}

CircuitBreaker::CircuitBreaker(CircuitBreaker&& other) noexcept
    : options_(other.options_),
      state_(other.state_.load()),
      consecutive_(other.consecutive_),
      window_(std::move(other.window_)),
      window_failures_(other.window_failures_),
      probe_in_flight_(other.probe_in_flight_),
      cooldown_ms_(other.cooldown_ms_),
      reopens_at_(other.reopens_at_),
      times_opened_(other.times_opened_) {}

bool CircuitBreaker::Allow(TimePoint now) {
  switch (state()) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now < reopens_at_) return false;
      state_.store(BreakerState::kHalfOpen, std::memory_order_relaxed);
      probe_in_flight_ = false;
      return true;
    case BreakerState::kHalfOpen:
      return !probe_in_flight_;
  }
  return false;
}

void CircuitBreaker::OnDispatch() {
  if (state() == BreakerState::kHalfOpen) probe_in_flight_ = true;
}

bool CircuitBreaker::OnSuccess(TimePoint now) {
  if (state() != BreakerState::kClosed) {
    // The probe (or a batch started before the breaker opened) succeeded.
    state_.store(BreakerState::kClosed, std::memory_order_relaxed);
    probe_in_flight_ = false;
    consecutive_ = 0;
    window_.clear();
    window_failures_ = 0;
    cooldown_ms_ = 0;
    return true;
  }
  consecutive_ = 0;
  window_.push_back(false);
  if (static_cast<int>(window_.size()) > options_.ratio_window) {
    window_failures_ -= window_.front();
    window_.pop_front();
  }
  return false;
}

bool CircuitBreaker::OnFailure(TimePoint now) {
  switch (state()) {
    case BreakerState::kOpen:
      return false;  // a batch started before it opened: already counted
    case BreakerState::kHalfOpen:
      cooldown_ms_ = std::min(cooldown_ms_ * 2, options_.max_cooldown_ms);
      Open(now);
      return true;
    case BreakerState::kClosed:
      break;
  }
  ++consecutive_;
  window_.push_back(true);
  ++window_failures_;
  if (static_cast<int>(window_.size()) > options_.ratio_window) {
    window_failures_ -= window_.front();
    window_.pop_front();
  }
  bool ratio_tripped =
      static_cast<int>(window_.size()) >= options_.ratio_min_batches &&
      window_failures_ >= options_.failure_ratio * static_cast<double>(window_.size());
  if (consecutive_ < options_.consecutive_failures && !ratio_tripped) return false;
  cooldown_ms_ = options_.open_cooldown_ms;
  Open(now);
  return true;
}

void CircuitBreaker::Open(TimePoint now) {
  state_.store(BreakerState::kOpen, std::memory_order_relaxed);
  probe_in_flight_ = false;
  reopens_at_ = now + std::chrono::milliseconds(cooldown_ms_);
  ++times_opened_;
}

}  // namespace sluice
