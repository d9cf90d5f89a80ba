// LatencyHistogram: a log-linear histogram of non-negative integers (the load
// generator records nanoseconds) with a bounded relative error, mergeable.
//
// Layout (HDR-like): the values 0..255 each have their own bucket, so they
// are exact. Above that, every power-of-two range [2^k, 2^(k+1)) is split into
// kSubBuckets (128) equal buckets, so no bucket is wider than 1/128 of its
// lower bound. The whole uint64 range is covered (7,424 buckets, 58 KiB once
// the first value is recorded; an empty histogram allocates nothing).
//
// Error bound: ValueAtQuantile(q) returns the midpoint of the bucket holding
// the recorded value of rank ceil(q * count), clamped to the exact min and
// max. That value v differs from the answer by at most half a bucket width,
// i.e. by at most v / 256 (0.39 %): every quantile is within kMaxRelativeError
// of a value that was really recorded at that rank. min(), max(), count() and
// mean() are exact.
//
// Merge() adds another histogram's counts: per-thread histograms merged at the
// end give exactly the histogram of all values recorded (merging is
// associative and commutative).
//
// Thread-safety: none; one writer, or external synchronisation. Copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128 per octave
  static constexpr size_t kBucketCount = 2 * kSubBuckets + (63 - kSubBucketBits) * kSubBuckets;
  // Largest relative distance between a reported quantile and the recorded
  // value of that rank.
  static constexpr double kMaxRelativeError = 1.0 / (2 * kSubBuckets);

  void Record(uint64_t value) { RecordN(value, 1); }
  void RecordN(uint64_t value, uint64_t n);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  // 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;

  // REQUIRES: 0 <= q <= 1. 0 when empty. q = 0 gives min(), q = 1 gives max().
  uint64_t ValueAtQuantile(double q) const;

  // Bucket geometry, public for tests: the bucket holding `value`, and the
  // range [BucketLow(i), BucketHigh(i)] of values that land in bucket i.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);

 private:
  std::vector<uint64_t> counts_;  // kBucketCount entries once non-empty
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace sluice::loadgen
