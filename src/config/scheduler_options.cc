#include "config/scheduler_options.h"

#include <algorithm>

namespace sluice {

AdmissionController::Options AdmissionOptionsFor(const AppConfig& app, const ModelConfig& model) {
  AdmissionController::Options a;
  a.model = model.name;
  for (const TierPolicy& t : app.tiers) {
    size_t depth = t.max_queue_depth < 0    ? SeedMaxQueueDepth(t.name)
                   : t.max_queue_depth == 0 ? kNoQueueDepthLimit
                                            : static_cast<size_t>(t.max_queue_depth);
    a.tiers.push_back({t.name, t.priority, depth,
                       static_cast<size_t>(std::max<int64_t>(0, t.max_queue_depth_per_device))});
  }
  return a;
}

BatchCostModel::Options CostPriorFor(const ModelConfig& model) {
  BatchCostModel::Options c;
  c.max_batch_size = model.max_batch_size;
  if (model.backend.kind == "sim") {
    // A zero-cost simulated device still takes some time per batch.
    c.prior_batch_fixed_us = std::max<int64_t>(1, model.backend.sim.fixed_latency_us);
    c.prior_batch_per_item_us = model.backend.sim.per_item_latency_us;
  }
  return c;
}

ModelScheduler::Options SchedulerOptionsFor(const AppConfig& app, const ModelConfig& model) {
  ModelScheduler::Options s;
  s.queue.capacity = model.queue_capacity;
  s.queue.ordering = app.ordering;
  s.queue.tiers = app.tiers;
  DispatchGroup::Options& g = s.dispatch;
  g.model = model.name;
  g.max_batch_size = model.max_batch_size;
  g.max_batch_delay_us = model.max_batch_delay_us;
  g.async_fill_max_batch_size = model.async_fill_max_batch_size;
  g.batching = model.batching;
  g.accelerator_timeout_us = model.accelerator_timeout_ms * 1000;
  g.retry = model.retry;
  g.breaker = model.circuit_breaker;
  s.cost = CostPriorFor(model);
  if (app.admission.enabled) s.admission = AdmissionOptionsFor(app, model);
  s.scaling.target_utilization = app.admission.target_utilization;
  return s;
}

size_t LargestBatchSize(const AppConfig& app) {
  size_t largest = 1;
  for (const ModelConfig& m : app.models) largest = std::max(largest, m.max_batch_size);
  return largest;
}

}  // namespace sluice
