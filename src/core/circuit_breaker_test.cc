#include "core/circuit_breaker.h"

#include <gtest/gtest.h>

#include <random>

#include "core/retry_policy.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  CircuitBreaker b({.consecutive_failures = 3, .ratio_min_batches = 10});
  TimePoint t{};
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_FALSE(b.OnFailure(t));
  b.OnSuccess(t);  // resets the run
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_TRUE(b.OnFailure(t));
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_FALSE(b.Allow(t + milliseconds(999)));
}

TEST(CircuitBreakerTest, OpensOnTheErrorRatioOfTheWindow) {
  CircuitBreaker b({.consecutive_failures = 100,
                    .failure_ratio = 0.5,
                    .ratio_window = 10,
                    .ratio_min_batches = 10});
  TimePoint t{};
  bool opened = false;
  for (int i = 0; i < 10 && !opened; ++i) {  // succeed, fail, succeed, ...
    opened = (i % 2 == 1) ? b.OnFailure(t) : b.OnSuccess(t);
  }
  EXPECT_TRUE(opened);  // 5 of 10 failed
  EXPECT_EQ(b.state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, RatioNeedsEnoughBatches) {
  CircuitBreaker b({.consecutive_failures = 100, .ratio_window = 20, .ratio_min_batches = 10});
  TimePoint t{};
  b.OnFailure(t);
  b.OnSuccess(t);
  b.OnFailure(t);
  EXPECT_EQ(b.state(), BreakerState::kClosed);  // 2 of 3, too few batches
}

TEST(CircuitBreakerTest, HalfOpenAllowsOneProbe) {
  CircuitBreaker b({.consecutive_failures = 1, .open_cooldown_ms = 100, .max_cooldown_ms = 250});
  TimePoint t{};
  b.OnFailure(t);
  EXPECT_TRUE(b.Allow(t + milliseconds(100)));
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  b.OnDispatch();
  EXPECT_FALSE(b.Allow(t + milliseconds(100)));     // one probe at a time
  EXPECT_TRUE(b.OnFailure(t + milliseconds(150)));  // probe failed: 200 ms
  EXPECT_FALSE(b.Allow(t + milliseconds(349)));
  EXPECT_TRUE(b.Allow(t + milliseconds(350)));
  b.OnDispatch();
  b.OnFailure(t + milliseconds(400));  // capped at 250 ms
  EXPECT_TRUE(b.Allow(t + milliseconds(650)));
  b.OnDispatch();
  EXPECT_TRUE(b.OnSuccess(t + milliseconds(700)));
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_EQ(b.times_opened(), 3u);
}

TEST(CircuitBreakerTest, ValidateRejectsNonsense) {
  EXPECT_FALSE(CircuitBreaker::Validate({.consecutive_failures = 0}).ok());
  EXPECT_FALSE(CircuitBreaker::Validate({.failure_ratio = 0}).ok());
  EXPECT_FALSE(CircuitBreaker::Validate({.ratio_window = 5, .ratio_min_batches = 6}).ok());
  EXPECT_FALSE(CircuitBreaker::Validate({.open_cooldown_ms = 10, .max_cooldown_ms = 5}).ok());
  EXPECT_TRUE(CircuitBreaker::Validate({}).ok());
}

TEST(RetryPolicyTest, BackoffDoublesWithJitterAndCaps) {
  RetryPolicy p{
      .max_retries = 2, .initial_backoff_us = 10'000, .max_backoff_us = 25'000, .jitter = 0.5};
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    int64_t b1 = p.BackoffUs(1, rng), b2 = p.BackoffUs(2, rng), b3 = p.BackoffUs(3, rng);
    EXPECT_GE(b1, 5'000);
    EXPECT_LE(b1, 10'000);
    EXPECT_GE(b2, 10'000);
    EXPECT_LE(b2, 20'000);
    EXPECT_GE(b3, 12'500);
    EXPECT_LE(b3, 25'000);
  }
  EXPECT_FALSE(RetryPolicy{.max_retries = 11}.Validate().ok());
  EXPECT_FALSE(RetryPolicy{.jitter = 1.5}.Validate().ok());
}

}  // namespace
}  // namespace sluice
