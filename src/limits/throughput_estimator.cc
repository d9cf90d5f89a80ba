#include "limits/throughput_estimator.h"

#include <cmath>

namespace sluice {

BatchThroughputEstimator::BatchThroughputEstimator(const Options& options) : options_(options) {}

double BatchThroughputEstimator::ModelledMicros(size_t batch_size) const {
  return static_cast<double>(options_.prior_batch_fixed_us) +
         static_cast<double>(options_.prior_batch_per_item_us) * static_cast<double>(batch_size);
}

void BatchThroughputEstimator::AddBatch(TimePoint now, size_t batch_size,
                                        SteadyClock::duration batch_time) {
  if (batch_size == 0 || batch_time <= SteadyClock::duration::zero()) return;
  if (batches_ > 0 && now > last_) {
    // Decay by elapsed time, not per sample, so "recent" means the same
    // number of seconds at any batch rate.
    const double elapsed_ms = std::chrono::duration<double, std::milli>(now - last_).count();
    const double keep = std::exp(-elapsed_ms / static_cast<double>(options_.time_constant_ms));
    measured_us_ *= keep;
    modelled_us_ *= keep;
    w_ *= keep;
    n_ *= keep;
    nn_ *= keep;
    t_ *= keep;
    nt_ *= keep;
  }
  const double t = std::chrono::duration<double, std::micro>(batch_time).count();
  const double n = static_cast<double>(batch_size);
  measured_us_ += t;
  modelled_us_ += ModelledMicros(batch_size);
  w_ += 1;
  n_ += n;
  nn_ += n * n;
  t_ += t;
  nt_ += n * t;
  if (batches_ == 0 || now > last_) last_ = now;
  ++batches_;
}

double BatchThroughputEstimator::speed_factor() const {
  return batches_ == 0 || modelled_us_ <= 0 ? 1.0 : measured_us_ / modelled_us_;
}

bool BatchThroughputEstimator::Fit(double* fixed_us, double* per_item_us) const {
  if (w_ <= 0) return false;
  const double mean_n = n_ / w_;
  const double var_n = nn_ / w_ - mean_n * mean_n;
  if (!(var_n >= 1.0)) return false;  // sizes too alike to split the cost
  const double slope = (nt_ / w_ - mean_n * (t_ / w_)) / var_n;
  const double intercept = t_ / w_ - slope * mean_n;
  if (!(slope >= 0) || !(intercept >= 0) || slope + intercept <= 0) return false;
  *fixed_us = intercept;
  *per_item_us = slope;
  return true;
}

double BatchThroughputEstimator::FixedMicros() const {
  double fixed = 0, per_item = 0;
  if (Fit(&fixed, &per_item)) return fixed;
  return speed_factor() * static_cast<double>(options_.prior_batch_fixed_us);
}

double BatchThroughputEstimator::PerItemMicros() const {
  double fixed = 0, per_item = 0;
  if (Fit(&fixed, &per_item)) return per_item;
  return speed_factor() * static_cast<double>(options_.prior_batch_per_item_us);
}

double BatchThroughputEstimator::BatchMicros(size_t batch_size) const {
  double fixed = 0, per_item = 0;
  if (!Fit(&fixed, &per_item)) return speed_factor() * ModelledMicros(batch_size);
  return fixed + per_item * static_cast<double>(batch_size);
}

double BatchThroughputEstimator::ItemsPerSecond() const {
  return static_cast<double>(options_.max_batch_size) * 1e6 / BatchMicros(options_.max_batch_size);
}

}  // namespace sluice
