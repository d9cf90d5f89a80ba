#include "limits/throughput_estimator.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

BatchThroughputEstimator Make() {
  BatchThroughputEstimator::Options options;  // 32 items, 34 ms + 0.5 ms/item, tau 1 s
  return BatchThroughputEstimator(options);
}

TEST(BatchThroughputEstimatorTest, PriorBeforeAnyBatch) {
  BatchThroughputEstimator e = Make();
  EXPECT_DOUBLE_EQ(e.ItemsPerSecond(), 640.0);  // 32 items / 50 ms
  EXPECT_DOUBLE_EQ(e.speed_factor(), 1.0);
  EXPECT_EQ(e.batches(), 0u);
}

TEST(BatchThroughputEstimatorTest, FullBatchesAreMeasuredExactly) {
  BatchThroughputEstimator e = Make();
  e.AddBatch(kStart, 32, milliseconds(100));
  EXPECT_DOUBLE_EQ(e.ItemsPerSecond(), 320.0);
  EXPECT_DOUBLE_EQ(e.speed_factor(), 2.0);
}

TEST(BatchThroughputEstimatorTest, SmallBatchesDoNotReadAsLowCapacity) {
  // At light load a slot is busy running small batches: 4 items in 36 ms is
  // 111 items per busy second, yet the slot could do 640/s with full batches.
  BatchThroughputEstimator e = Make();
  TimePoint now = kStart;
  for (int i = 0; i < 100; ++i) {
    now += milliseconds(36);
    e.AddBatch(now, 4, microseconds(36'000));
  }
  EXPECT_NEAR(e.ItemsPerSecond(), 640.0, 1e-6);
}

TEST(BatchThroughputEstimatorTest, FollowsASlowdownWithinTheTimeConstant) {
  BatchThroughputEstimator e = Make();
  TimePoint now = kStart;
  for (int i = 0; i < 100; ++i) {  // 5 s at the modelled speed
    now += milliseconds(50);
    e.AddBatch(now, 32, milliseconds(50));
  }
  EXPECT_NEAR(e.ItemsPerSecond(), 640.0, 1e-6);
  // The device becomes twice as slow.
  for (int i = 0; i < 10; ++i) {  // 1 s = one time constant
    now += milliseconds(100);
    e.AddBatch(now, 32, milliseconds(100));
  }
  // The estimate moves ~63 % of the way from 640/s to 320/s in one time
  // constant of busy time...
  const double moved_after_one_tau = (640.0 - e.ItemsPerSecond()) / 320.0;
  EXPECT_GT(moved_after_one_tau, 0.60);
  EXPECT_LT(moved_after_one_tau, 0.67);
  for (int i = 0; i < 20; ++i) {  // ...and ~95 % in three.
    now += milliseconds(100);
    e.AddBatch(now, 32, milliseconds(100));
  }
  EXPECT_GT((640.0 - e.ItemsPerSecond()) / 320.0, 0.94);
}

TEST(BatchThroughputEstimatorTest, IgnoresEmptyOrZeroLengthBatches) {
  BatchThroughputEstimator e = Make();
  e.AddBatch(kStart, 0, milliseconds(10));
  e.AddBatch(kStart, 8, microseconds(0));
  EXPECT_EQ(e.batches(), 0u);
  EXPECT_DOUBLE_EQ(e.ItemsPerSecond(), 640.0);
}

TEST(BatchThroughputEstimatorTest, LearnsTheFixedAndPerItemCostWhenSizesVary) {
  // The real device: 10 ms + 2 ms per item (the prior says 34 + 0.5).
  BatchThroughputEstimator e = Make();
  TimePoint now = kStart;
  for (int i = 0; i < 200; ++i) {
    const size_t n = 1 + static_cast<size_t>(i % 32);
    now += milliseconds(20);
    e.AddBatch(now, n, microseconds(10'000 + 2'000 * static_cast<int64_t>(n)));
  }
  EXPECT_NEAR(e.FixedMicros(), 10'000, 1);
  EXPECT_NEAR(e.PerItemMicros(), 2'000, 0.1);
  EXPECT_NEAR(e.BatchMicros(32), 74'000, 2);
  EXPECT_NEAR(e.ItemsPerSecond(), 32 / 0.074, 0.1);
}

TEST(BatchThroughputEstimatorTest, KeepsThePriorShapeWhileSizesAreAlike) {
  BatchThroughputEstimator e = Make();
  e.AddBatch(kStart, 1, microseconds(69'000));  // twice the prior's 34.5 ms
  EXPECT_DOUBLE_EQ(e.FixedMicros(), 68'000);
  EXPECT_DOUBLE_EQ(e.PerItemMicros(), 1'000);
}

}  // namespace
}  // namespace sluice
