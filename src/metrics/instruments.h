// The three metric instruments: Counter, Gauge and Histogram.
//
// They are usually obtained from a Registry (registry.h), which owns them and
// renders them for Prometheus, but they can also be used on their own.
//
// Thread-safety. Every method of every instrument is thread-safe and
// lock-free; updates use relaxed atomics, so a reader sees each update
// eventually but no ordering with respect to other memory. They are meant to
// sit on the request path: an update costs one or two atomic operations.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::metrics {

// A monotonically increasing count (requests served, bytes sent...).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue depth, in-flight batches...).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  // Atomic read-modify-write: concurrent Add() calls are never lost.
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into fixed buckets, Prometheus style: an observation v
// falls into the first bucket whose upper bound satisfies v <= bound, or into
// the implicit +Inf bucket after the last bound. NaN observations are ignored
// (they would poison the sum forever).
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;  // the finite bounds, increasing
    // Per bucket, NOT cumulative; size() == upper_bounds.size() + 1, the last
    // entry being the +Inf bucket.
    std::vector<uint64_t> counts;
    double sum = 0;      // sum of all observations
    uint64_t count = 0;  // == sum of `counts`, always
  };

  // REQUIRES: `upper_bounds` strictly increasing and finite (may be empty:
  // only the +Inf bucket). Throws std::invalid_argument otherwise, a
  // programming error caught at setup time.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Lock-free: a binary search plus two atomic updates.
  void Observe(double v);

  // Bucket counts are read one by one while writers may be running, so a
  // snapshot taken under load is not one instant: `sum` may include an
  // observation that `counts` miss or vice versa. `count` is derived from
  // `counts`, so cumulative buckets and the count always agree.
  Snapshot snapshot() const;

  // Estimated q-quantile (q clamped to 0..1) in the manner of Prometheus'
  // histogram_quantile(): find the bucket holding rank q * count and
  // interpolate linearly between its lower and upper bound (the first
  // bucket's lower bound is 0, or its upper bound if that is <= 0). A rank in
  // the +Inf bucket yields the largest finite bound. Returns 0 when the
  // histogram is empty or has no finite bounds.
  double Quantile(double q) const;

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  // upper_bounds_.size() + 1 counters; the last is the +Inf bucket.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// `count` bounds start, start*factor, start*factor^2, ...
// REQUIRES: start > 0, factor > 1, count >= 1; throws std::invalid_argument.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// `count` bounds start, start+width, start+2*width, ...
// REQUIRES: width > 0, count >= 1; throws std::invalid_argument.
std::vector<double> LinearBuckets(double start, double width, int count);

}  // namespace sluice::metrics
