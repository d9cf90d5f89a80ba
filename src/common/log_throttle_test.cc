#include "common/log_throttle.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(LogThrottleTest, OneLinePerIntervalWithTheCountHeldBack) {
  LogThrottle throttle(milliseconds(1'000));
  const TimePoint t0{std::chrono::seconds(100)};
  EXPECT_EQ(throttle.Allow(t0), std::optional<uint64_t>(0));  // the first goes through
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(throttle.Allow(t0 + milliseconds(i * 100)), std::nullopt);
  EXPECT_EQ(throttle.Allow(t0 + milliseconds(999)), std::nullopt);
  EXPECT_EQ(throttle.Allow(t0 + milliseconds(1'000)), std::optional<uint64_t>(6));
  EXPECT_EQ(throttle.Allow(t0 + milliseconds(1'500)), std::nullopt);
  EXPECT_EQ(throttle.Allow(t0 + milliseconds(5'000)), std::optional<uint64_t>(1));
}

TEST(LogThrottleTest, ManyThreadsAtOnceLetExactlyOneThrough) {
  LogThrottle throttle(milliseconds(1'000));
  const TimePoint t0{std::chrono::seconds(100)};
  std::atomic<int> through{0};
  std::atomic<uint64_t> reported{0};  // held-back counts the lines carried
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1'000; ++i) {
        if (std::optional<uint64_t> n = throttle.Allow(t0)) {
          ++through;
          reported += *n;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(through.load(), 1);
  // Every other event was counted, once.
  std::optional<uint64_t> next = throttle.Allow(t0 + milliseconds(1'000));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(reported.load() + *next, 3'999u);
}

}  // namespace
}  // namespace sluice
