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
  }
  measured_us_ += std::chrono::duration<double, std::micro>(batch_time).count();
  modelled_us_ += ModelledMicros(batch_size);
  if (batches_ == 0 || now > last_) last_ = now;
  ++batches_;
}

double BatchThroughputEstimator::speed_factor() const {
  return batches_ == 0 || modelled_us_ <= 0 ? 1.0 : measured_us_ / modelled_us_;
}

double BatchThroughputEstimator::ItemsPerSecond() const {
  const double full_batch_us = speed_factor() * ModelledMicros(options_.max_batch_size);
  return static_cast<double>(options_.max_batch_size) * 1e6 / full_batch_us;
}

}  // namespace sluice
