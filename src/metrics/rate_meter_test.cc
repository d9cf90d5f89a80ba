#include "metrics/rate_meter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace sluice::metrics {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A clock that stands still until told otherwise. Thread-safe.
class FakeClock : public Clock {
 public:
  TimePoint Now() const override { return now_.load(); }
  // Sets the time to `ms` milliseconds after this clock's start.
  void SetMillis(int64_t ms) { now_.store(kStart + milliseconds(ms)); }

 private:
  static constexpr TimePoint kStart = TimePoint() + std::chrono::hours(1000);
  std::atomic<TimePoint> now_{kStart};
};

template <typename Fn>
void RunConcurrently(int threads, Fn fn) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(fn);
  for (auto& w : workers) w.join();
}

TEST(RateMeterTest, CountsCompleteSecondsOverSlidingWindow) {
  FakeClock clock;
  RateMeter meter(&clock, /*window_seconds=*/3);
  meter.Mark(5);
  EXPECT_EQ(meter.PerSecond(), 0.0);  // second 0 is not complete yet
  clock.SetMillis(999);
  EXPECT_EQ(meter.PerSecond(), 0.0);
  clock.SetMillis(1000);
  EXPECT_EQ(meter.PerSecond(), 5.0);  // only one second has passed: 5 / 1
  clock.SetMillis(1500);
  meter.Mark(3);
  EXPECT_EQ(meter.PerSecond(), 5.0);  // the current second does not count yet
  clock.SetMillis(2000);
  EXPECT_EQ(meter.PerSecond(), 4.0);  // (5 + 3) / 2
  clock.SetMillis(3000);
  EXPECT_DOUBLE_EQ(meter.PerSecond(), 8.0 / 3);  // seconds 0..2
  clock.SetMillis(4000);
  EXPECT_EQ(meter.PerSecond(), 1.0);  // seconds 1..3: second 0 slid out
  clock.SetMillis(5000);
  EXPECT_EQ(meter.PerSecond(), 0.0);  // seconds 2..4
}

TEST(RateMeterTest, ReusedSlotsForgetOldSeconds) {
  FakeClock clock;
  RateMeter meter(&clock, /*window_seconds=*/2);  // 3 slots
  meter.Mark(10);                                 // second 0, slot 0
  clock.SetMillis(3200);
  meter.Mark(1);  // second 3 takes slot 0 over
  clock.SetMillis(4000);
  EXPECT_EQ(meter.PerSecond(), 0.5);  // seconds 2..3: 1 / 2
  clock.SetMillis(100'000);
  EXPECT_EQ(meter.PerSecond(), 0.0);  // long idle: every slot is stale
  meter.Mark(4);
  clock.SetMillis(101'000);
  EXPECT_EQ(meter.PerSecond(), 2.0);
}

TEST(RateMeterTest, ConcurrentMarksAllCount) {
  FakeClock clock;
  RateMeter meter(&clock);
  clock.SetMillis(100);
  RunConcurrently(4, [&] {
    for (int i = 0; i < 20'000; ++i) meter.Mark();
  });
  clock.SetMillis(1000);
  EXPECT_EQ(meter.PerSecond(), 80'000.0);
}

TEST(RateMeterTest, SaturatesPerSecond) {
  FakeClock clock;
  RateMeter meter(&clock, 1);
  meter.Mark(uint64_t{1} << 40);
  meter.Mark(7);
  clock.SetMillis(1000);
  EXPECT_EQ(meter.PerSecond(), 4294967295.0);
}

TEST(RateMeterTest, RejectsEmptyWindow) {
  FakeClock clock;
  EXPECT_THROW(RateMeter(&clock, 0), std::invalid_argument);
  EXPECT_THROW(BusyMeter(&clock, -1), std::invalid_argument);
}

TEST(BusyMeterTest, FractionOfSlotTime) {
  FakeClock clock;
  BusyMeter meter(&clock);
  clock.SetMillis(500);
  meter.AddBusy(milliseconds(250));
  EXPECT_EQ(meter.BusyFraction(2), 0.0);  // second 0 still running
  clock.SetMillis(1000);
  EXPECT_EQ(meter.BusyFraction(2), 0.125);  // 0.25 s of 1 s * 2 slots
  EXPECT_EQ(meter.BusyFraction(1), 0.25);
  EXPECT_EQ(meter.BusyFraction(0), 0.0);
  meter.AddBusy(milliseconds(0));
  meter.AddBusy(milliseconds(-5));
  clock.SetMillis(2000);
  EXPECT_EQ(meter.BusyFraction(1), 0.125);  // (0.25 + 0) / 2 s
}

TEST(BusyMeterTest, SplitsWorkAcrossTheSecondsItCovered) {
  FakeClock clock;
  BusyMeter meter(&clock, /*window_seconds=*/4);
  clock.SetMillis(3500);
  meter.AddBusy(seconds(2));  // [1.5, 3.5): 0.5 s + 1 s + 0.5 s
  clock.SetMillis(4000);
  EXPECT_EQ(meter.BusyFraction(1), 0.5);  // seconds 0..3: 2 / 4
  clock.SetMillis(5000);
  EXPECT_EQ(meter.BusyFraction(1), 0.5);  // seconds 1..4
  clock.SetMillis(6000);
  EXPECT_EQ(meter.BusyFraction(1), 0.375);  // seconds 2..5: 1.5 / 4
  clock.SetMillis(7000);
  EXPECT_EQ(meter.BusyFraction(1), 0.125);  // seconds 3..6: 0.5 / 4
  clock.SetMillis(8000);
  EXPECT_EQ(meter.BusyFraction(1), 0.0);
}

TEST(BusyMeterTest, DropsTimeBeforeConstructionAndBeyondWindow) {
  FakeClock clock;
  BusyMeter meter(&clock, /*window_seconds=*/2);
  clock.SetMillis(500);
  meter.AddBusy(seconds(5));  // only [0, 0.5) is after construction
  clock.SetMillis(1000);
  EXPECT_EQ(meter.BusyFraction(1), 0.5);
  clock.SetMillis(10'000);
  meter.AddBusy(seconds(100));            // only seconds 8 and 9 are still in the ring
  EXPECT_EQ(meter.BusyFraction(1), 1.0);  // seconds 8..9
  EXPECT_EQ(meter.BusyFraction(4), 0.25);
  clock.SetMillis(11'000);
  EXPECT_EQ(meter.BusyFraction(1), 0.5);  // seconds 9..10
}

TEST(BusyMeterTest, ClampsToOne) {
  FakeClock clock;
  BusyMeter meter(&clock, 1);
  clock.SetMillis(1000);
  meter.AddBusy(seconds(1));
  meter.AddBusy(seconds(1));  // the caller under-reported its slots
  EXPECT_EQ(meter.BusyFraction(1), 1.0);
  EXPECT_EQ(meter.BusyFraction(4), 0.5);
}

TEST(BusyMeterTest, ConcurrentAddBusyAllCounts) {
  FakeClock clock;
  BusyMeter meter(&clock);
  clock.SetMillis(900);
  RunConcurrently(4, [&] {
    for (int i = 0; i < 1000; ++i) meter.AddBusy(milliseconds(1));
  });
  clock.SetMillis(1000);
  EXPECT_EQ(meter.BusyFraction(8), 0.5);  // 4 s of busy time / 8 slot-seconds
}

}  // namespace
}  // namespace sluice::metrics
