#include "metrics/instruments.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace sluice::metrics {
namespace {

std::vector<double> ValidatedBounds(std::vector<double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
  return bounds;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(ValidatedBounds(std::move(upper_bounds))),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]()) {}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v, i.e. the bucket with v <= le; end() is the +Inf bucket.
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  s.counts.resize(upper_bounds_.size() + 1);
  for (size_t i = 0; i < s.counts.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

double Histogram::Quantile(double q) const {
  if (upper_bounds_.empty()) return 0;
  const Snapshot s = snapshot();
  if (s.count == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(s.count);
  // The first non-empty bucket whose cumulative count reaches the rank; the
  // non-empty condition keeps q = 0 out of leading empty buckets.
  uint64_t below = 0;
  size_t b = 0;
  for (; b < s.counts.size(); ++b) {
    if (s.counts[b] > 0 && static_cast<double>(below + s.counts[b]) >= rank) break;
    below += s.counts[b];
  }
  if (b >= upper_bounds_.size()) return upper_bounds_.back();  // the +Inf bucket
  const double upper = upper_bounds_[b];
  const double lower = b > 0 ? upper_bounds_[b - 1] : 0.0;
  if (b == 0 && upper <= 0) return upper;
  const double in_bucket = static_cast<double>(s.counts[b]);
  return lower + (upper - lower) * (rank - static_cast<double>(below)) / in_bucket;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    throw std::invalid_argument("ExponentialBuckets needs start > 0, factor > 1, count >= 1");
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  for (int i = 0; i < count; ++i) {
    bounds.push_back(start);
    start *= factor;
  }
  return ValidatedBounds(std::move(bounds));  // rejects overflow to +Inf
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (!(width > 0) || count < 1) {
    throw std::invalid_argument("LinearBuckets needs width > 0, count >= 1");
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return ValidatedBounds(std::move(bounds));
}

}  // namespace sluice::metrics
