#include "app/dispatch_metrics.h"

namespace sluice {

metrics::Labels BreakerStateLabels(const std::string& model, const std::string& endpoint) {
  return {{"model", model}, {"endpoint", endpoint}};
}

void AddBreakerStateGauge(metrics::Registry& registry, const std::string& model,
                          const std::string& endpoint, GroupSource group) {
  registry.AddCallbackGauge(
      kBreakerStateMetric, "Endpoint circuit breaker: 0 closed, 1 half-open, 2 open.",
      BreakerStateLabels(model, endpoint), [group = std::move(group), endpoint] {
        const std::shared_ptr<const DispatchGroup> g = group();
        for (size_t e = 0; e < g->endpoint_count(); ++e) {
          if (g->endpoint_name(e) != endpoint) continue;
          switch (g->endpoint_state(e)) {
            case BreakerState::kClosed:
              return 0.0;
            case BreakerState::kHalfOpen:
              return 1.0;
            case BreakerState::kOpen:
              return 2.0;
          }
        }
        return 0.0;
      });
}

void AddDispatchGroupMetrics(metrics::Registry& registry, const std::string& model,
                             const GroupSource& group, const BatchCostModel* cost,
                             std::function<double()> utilization) {
  const std::shared_ptr<const DispatchGroup> now = group();
  for (size_t e = 0; e < now->endpoint_count(); ++e) {
    AddBreakerStateGauge(registry, model, now->endpoint_name(e), group);
  }
  const metrics::Labels labels{{"model", model}};
  registry.AddCallbackGauge("sluice_accelerator_utilization",
                            "Busy fraction of the model's accelerator slots over the last 10 s.",
                            labels, std::move(utilization));
  registry.AddCallbackGauge("sluice_accelerator_busy_slots",
                            "Accelerator slots running a batch right now.", labels,
                            [group] { return static_cast<double>(group()->busy_slots()); });
  registry.AddCallbackGauge("sluice_accelerator_slots", "Accelerator slots configured.", labels,
                            [group] { return static_cast<double>(group()->slot_count()); });
  registry.AddCallbackGauge("sluice_accelerator_healthy_slots",
                            "Accelerator slots in service (enabled, breaker closed).", labels,
                            [group] { return static_cast<double>(group()->available_slots()); });
  registry.AddCallbackGauge("sluice_retries_pending", "Requests waiting for a retry.", labels,
                            [group] { return static_cast<double>(group()->retries_pending()); });
  registry.AddCallbackGauge(
      "sluice_capacity_rps",
      "Requests/s the healthy accelerator slots complete running full batches (learnt cost).",
      labels, [group, cost] {
        return static_cast<double>(group()->available_slots()) * cost->FullBatchRps();
      });
  registry.AddCallbackGauge("sluice_throughput_per_device_rps",
                            "Requests/s one accelerator slot completes with full batches (learnt).",
                            labels, [cost] { return cost->FullBatchRps(); });
  registry.AddCallbackGauge("sluice_batch_fixed_seconds", "Learnt cost of a batch: the fixed part.",
                            labels, [cost] { return cost->FixedMicros() / 1e6; });
  registry.AddCallbackGauge("sluice_batch_per_item_seconds",
                            "Learnt cost of a batch: the part per request.", labels,
                            [cost] { return cost->PerItemMicros() / 1e6; });
}

}  // namespace sluice
