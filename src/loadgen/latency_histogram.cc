#include "loadgen/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice::loadgen {

size_t LatencyHistogram::BucketIndex(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  const int octave = std::bit_width(value) - 1;  // >= kSubBucketBits + 1
  const int shift = octave - kSubBucketBits;
  const uint64_t sub = (value >> shift) - kSubBuckets;  // 0..kSubBuckets-1
  return static_cast<size_t>(2 * kSubBuckets + (octave - kSubBucketBits - 1) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::BucketLow(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const size_t j = index - 2 * kSubBuckets;
  const int shift = static_cast<int>(j / kSubBuckets) + 1;
  return (kSubBuckets + j % kSubBuckets) << shift;
}

uint64_t LatencyHistogram::BucketHigh(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const int shift = static_cast<int>((index - 2 * kSubBuckets) / kSubBuckets) + 1;
  return BucketLow(index) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  if (counts_.empty()) counts_.assign(kBucketCount, 0);
  counts_[BucketIndex(value)] += n;
  count_ += n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value) * n;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  if (counts_.empty()) counts_.assign(kBucketCount, 0);
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  if (!counts_.empty()) std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  // The tiny discount keeps q * count from rounding up past an exact rank
  // (0.99 * 100 is 99.00000000000001 in binary floating point).
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_) * (1 - 1e-12))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t low = BucketLow(i);
      const uint64_t mid = low + (BucketHigh(i) - low) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace sluice::loadgen
