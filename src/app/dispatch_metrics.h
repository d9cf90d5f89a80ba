// AddDispatchGroupMetrics: the gauges of one model's accelerator slots, the
// same in `serve` (ModelRuntime) and in a scale-out worker (WorkerRole), all
// labelled by model:
//   sluice_circuit_breaker_state{endpoint} (0 closed, 1 half-open, 2 open),
//   sluice_accelerator_utilization, _busy_slots, _slots, _healthy_slots,
//   sluice_retries_pending, sluice_capacity_rps (healthy slots x learnt
//   full-batch rate), sluice_throughput_per_device_rps,
//   sluice_batch_fixed_seconds, sluice_batch_per_item_seconds.
// The gauges read the group `group` returns at each render (a reload may
// replace a model's group: the batches a retired group still runs are not
// in _busy_slots); the breaker gauges are those of the endpoints
// it has when added, found by name (AddBreakerStateGauge() adds one for an
// endpoint a reload brings). `group`'s source, the cost model and
// `utilization` must outlive every render of the registry.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/dispatch_group.h"
#include "limits/batch_cost_model.h"
#include "metrics/registry.h"

namespace sluice {

// A model's group now, on any thread.
using GroupSource = std::function<std::shared_ptr<const DispatchGroup>()>;

void AddDispatchGroupMetrics(metrics::Registry& registry, const std::string& model,
                             const GroupSource& group, const BatchCostModel* cost,
                             std::function<double()> utilization);

// sluice_circuit_breaker_state{model,endpoint}: the state of the breaker of
// the endpoint named `endpoint` in `group`'s group (closed while it has none).
void AddBreakerStateGauge(metrics::Registry& registry, const std::string& model,
                          const std::string& endpoint, GroupSource group);
// Its labels, to remove it (Registry::RemoveCallback) when a reload drops
// the endpoint.
inline constexpr const char* kBreakerStateMetric = "sluice_circuit_breaker_state";
metrics::Labels BreakerStateLabels(const std::string& model, const std::string& endpoint);

}  // namespace sluice
