#include "limits/batch_cost_model.h"

#include <string>

namespace sluice {
namespace {

BatchThroughputEstimator::Options EstimatorOptions(const BatchCostModel::Options& o) {
  BatchThroughputEstimator::Options e;
  e.max_batch_size = o.max_batch_size;
  e.prior_batch_fixed_us = o.prior_batch_fixed_us;
  e.prior_batch_per_item_us = o.prior_batch_per_item_us;
  e.time_constant_ms = o.time_constant_ms;
  return e;
}

}  // namespace

Result<std::unique_ptr<BatchCostModel>> BatchCostModel::Create(const Options& o) {
  auto bad = [](const char* field, const char* rule, int64_t got) {
    return InvalidArgument(std::string("batch cost model: ") + field + ": must be " + rule +
                           ", got " + std::to_string(got));
  };
  if (o.max_batch_size < 1) return bad("max_batch_size", ">= 1", 0);
  if (o.prior_batch_fixed_us < 0)
    return bad("prior_batch_fixed_us", ">= 0", o.prior_batch_fixed_us);
  if (o.prior_batch_per_item_us < 0) {
    return bad("prior_batch_per_item_us", ">= 0", o.prior_batch_per_item_us);
  }
  if (o.prior_batch_fixed_us + o.prior_batch_per_item_us <= 0) {
    return bad("prior_batch_fixed_us", "> 0 when prior_batch_per_item_us is 0", 0);
  }
  if (o.time_constant_ms < 1) return bad("time_constant_ms", ">= 1", o.time_constant_ms);
  Options resolved = o;
  if (resolved.clock == nullptr) resolved.clock = SystemClock();
  return std::unique_ptr<BatchCostModel>(new BatchCostModel(resolved));
}

BatchCostModel::BatchCostModel(const Options& options)
    : options_(options), estimator_(EstimatorOptions(options)) {
  std::lock_guard lock(mu_);
  Publish();
}

void BatchCostModel::Record(size_t batch_size, SteadyClock::duration duration) {
  const TimePoint now = options_.clock->Now();
  std::lock_guard lock(mu_);
  estimator_.AddBatch(now, batch_size, duration);
  Publish();
}

void BatchCostModel::Publish() {
  fixed_us_.store(estimator_.FixedMicros(), std::memory_order_relaxed);
  per_item_us_.store(estimator_.PerItemMicros(), std::memory_order_relaxed);
  speed_factor_.store(estimator_.speed_factor(), std::memory_order_relaxed);
  measured_.store(estimator_.batches() > 0, std::memory_order_relaxed);
}

}  // namespace sluice
