#include "loadgen/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::loadgen {
namespace {

// The recorded value of rank ceil(q * n) (the definition the histogram uses).
uint64_t ExactQuantile(std::vector<uint64_t> sorted, double q) {
  if (q <= 0) return sorted.front();
  const auto rank = static_cast<size_t>(std::ceil(q * sorted.size() * (1 - 1e-12)));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

std::vector<uint64_t> LogUniformValues(size_t n, uint64_t seed) {
  // 1 us .. 100 s in nanoseconds, spread evenly over the orders of magnitude.
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exp10(3, 11);
  std::vector<uint64_t> v(n);
  for (auto& x : v) x = static_cast<uint64_t>(std::pow(10.0, exp10(rng)));
  return v;
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 50u);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 99u);
  EXPECT_EQ(h.ValueAtQuantile(0.999), 100u);
  EXPECT_EQ(h.ValueAtQuantile(0), 1u);
  EXPECT_EQ(h.ValueAtQuantile(1), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, EveryBucketIsNarrowerThanOneIn128OfItsValues) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values = {0, 1, 255, 256, 257, 511, 512, 1000, 123456789, UINT64_MAX};
  for (int i = 0; i < 100000; ++i) values.push_back(rng() >> (rng() % 64));
  for (uint64_t v : values) {
    const size_t i = LatencyHistogram::BucketIndex(v);
    ASSERT_LT(i, LatencyHistogram::kBucketCount) << v;
    const uint64_t low = LatencyHistogram::BucketLow(i), high = LatencyHistogram::BucketHigh(i);
    ASSERT_LE(low, v);
    ASSERT_GE(high, v);
    ASSERT_LE(static_cast<double>(high - low), static_cast<double>(low) / 128) << v;
  }
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX), LatencyHistogram::kBucketCount - 1);
  // Buckets tile the line: each starts right after the previous one ends.
  for (size_t i = 1; i < LatencyHistogram::kBucketCount; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLow(i), LatencyHistogram::BucketHigh(i - 1) + 1) << i;
  }
}

TEST(LatencyHistogramTest, QuantilesAreWithinTheRelativeErrorBound) {
  const std::vector<uint64_t> values = LogUniformValues(200000, 42);
  LatencyHistogram h;
  for (uint64_t v : values) h.Record(v);
  std::vector<uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double q : {0.0, 0.001, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0}) {
    const double exact = static_cast<double>(ExactQuantile(sorted, q));
    const double got = static_cast<double>(h.ValueAtQuantile(q));
    EXPECT_LE(std::abs(got - exact), exact * LatencyHistogram::kMaxRelativeError)
        << "q=" << q << " exact=" << exact << " got=" << got;
  }
  EXPECT_LE(LatencyHistogram::kMaxRelativeError, 0.01);
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.max(), sorted.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LatencyHistogramTest, ABimodalTailIsNotSmearedIntoTheBody) {
  LatencyHistogram h;
  h.RecordN(1'000'000, 990);   // 1 ms
  h.RecordN(250'000'000, 10);  // 250 ms: exactly the top 1 %
  EXPECT_NEAR(h.ValueAtQuantile(0.5), 1e6, 1e6 / 256);
  EXPECT_NEAR(h.ValueAtQuantile(0.99), 1e6, 1e6 / 256);
  EXPECT_NEAR(h.ValueAtQuantile(0.991), 250e6, 250e6 / 256);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  const std::vector<uint64_t> values = LogUniformValues(50000, 3);
  LatencyHistogram all, a, b, c;
  for (size_t i = 0; i < values.size(); ++i) {
    all.Record(values[i]);
    (i % 3 == 0 ? a : i % 3 == 1 ? b : c).Record(values[i]);
  }
  LatencyHistogram merged;
  merged.Merge(c);
  merged.Merge(a);
  merged.Merge(LatencyHistogram());  // empty: no effect
  merged.Merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999}) {
    EXPECT_EQ(merged.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
  }
}

TEST(LatencyHistogramTest, EmptyAndReset) {
  LatencyHistogram h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.ValueAtQuantile(0.99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  h.Record(5000);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 5000u);  // clamped to the exact min/max
  h.Reset();
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.max(), 0u);
}

}  // namespace
}  // namespace sluice::loadgen
