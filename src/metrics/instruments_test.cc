#include "metrics/instruments.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::metrics {
namespace {

// Runs `fn(thread_index)` on `threads` threads at once and joins them.
template <typename Fn>
void RunConcurrently(int threads, Fn fn) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(fn, t);
  for (auto& w : workers) w.join();
}

TEST(CounterTest, ConcurrentIncrementsAllCount) {
  Counter counter;
  RunConcurrently(4, [&](int) {
    for (int i = 0; i < 100'000; ++i) counter.Inc();
    counter.Inc(5);
  });
  EXPECT_EQ(counter.value(), 4u * 100'005u);
}

TEST(GaugeTest, SetAndConcurrentAdd) {
  Gauge gauge;
  EXPECT_EQ(gauge.value(), 0.0);
  gauge.Set(2.5);
  EXPECT_EQ(gauge.value(), 2.5);
  RunConcurrently(4, [&](int) {
    for (int i = 0; i < 50'000; ++i) {
      gauge.Add(1);
      gauge.Add(-0.5);
    }
  });
  EXPECT_EQ(gauge.value(), 2.5 + 4 * 50'000 * 0.5);
}

TEST(HistogramTest, BucketBoundIsInclusive) {
  Histogram h({1, 2, 4});
  h.Observe(1);                                        // le=1
  h.Observe(1.5);                                      // le=2
  h.Observe(2);                                        // le=2
  h.Observe(-3);                                       // le=1
  h.Observe(5);                                        // +Inf
  h.Observe(std::numeric_limits<double>::infinity());  // +Inf
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.upper_bounds, (std::vector<double>{1, 2, 4}));
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 2, 0, 2}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_TRUE(std::isinf(s.sum));
}

TEST(HistogramTest, NanIsIgnored) {
  Histogram h({1});
  h.Observe(0.5);
  h.Observe(std::nan(""));
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.sum, 0.5);
}

TEST(HistogramTest, ConcurrentObserveSumsCorrectly) {
  Histogram h({10, 20});
  RunConcurrently(4, [&](int t) {
    for (int i = 0; i < 25'000; ++i) {
      h.Observe(5);   // le=10
      h.Observe(15);  // le=20
      h.Observe(25);  // +Inf
    }
  });
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{100'000, 100'000, 100'000}));
  EXPECT_EQ(s.count, 300'000u);
  EXPECT_EQ(s.sum, 100'000.0 * 45);  // integers: exact in double
}

TEST(HistogramTest, QuantileInterpolatesWithinBuckets) {
  Histogram h({1, 2, 4, 8});
  for (int i = 0; i < 10; ++i) h.Observe(0.5);  // le=1
  for (int i = 0; i < 10; ++i) h.Observe(1.5);  // le=2
  for (int i = 0; i < 20; ++i) h.Observe(3);    // le=4
  // 40 observations: rank = q * 40.
  EXPECT_DOUBLE_EQ(h.Quantile(0.1), 0.4);   // rank 4 in [0,1] holding 10
  EXPECT_DOUBLE_EQ(h.Quantile(0.25), 1.0);  // rank 10: end of the first bucket
  EXPECT_DOUBLE_EQ(h.Quantile(0.5), 2.0);   // rank 20: end of [1,2]
  EXPECT_DOUBLE_EQ(h.Quantile(0.75), 3.0);  // rank 30: halfway through [2,4]
  EXPECT_DOUBLE_EQ(h.Quantile(1.0), 4.0);
  EXPECT_DOUBLE_EQ(h.Quantile(0.0), 0.0);  // lower bound of the first non-empty bucket
  EXPECT_DOUBLE_EQ(h.Quantile(7.0), 4.0);  // q clamped to 1
}

TEST(HistogramTest, QuantileSkipsLeadingEmptyBucketsAndCapsAtLastBound) {
  Histogram h({1, 2, 4});
  h.Observe(3);
  h.Observe(3);
  EXPECT_DOUBLE_EQ(h.Quantile(0.0), 2.0);
  EXPECT_DOUBLE_EQ(h.Quantile(0.5), 3.0);
  h.Observe(100);  // +Inf bucket
  h.Observe(100);
  EXPECT_DOUBLE_EQ(h.Quantile(0.99), 4.0);  // the largest finite bound
}

TEST(HistogramTest, QuantileOfEmptyOrBoundlessHistogramIsZero) {
  EXPECT_EQ(Histogram({1, 2}).Quantile(0.5), 0.0);
  Histogram only_inf({});
  only_inf.Observe(3);
  EXPECT_EQ(only_inf.snapshot().counts, (std::vector<uint64_t>{1}));
  EXPECT_EQ(only_inf.Quantile(0.5), 0.0);
}

TEST(HistogramTest, RejectsBadBounds) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::nan("")}), std::invalid_argument);
}

TEST(BucketsTest, Exponential) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_THROW(ExponentialBuckets(0, 2, 4), std::invalid_argument);
  EXPECT_THROW(ExponentialBuckets(1, 1, 4), std::invalid_argument);
  EXPECT_THROW(ExponentialBuckets(1, 2, 0), std::invalid_argument);
  EXPECT_THROW(ExponentialBuckets(1, 1e300, 3), std::invalid_argument);  // overflows to +Inf
}

TEST(BucketsTest, Linear) {
  EXPECT_EQ(LinearBuckets(-1, 0.5, 4), (std::vector<double>{-1, -0.5, 0, 0.5}));
  EXPECT_THROW(LinearBuckets(0, 0, 3), std::invalid_argument);
  EXPECT_THROW(LinearBuckets(0, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::metrics
