// AddDispatchGroupMetrics: the gauges of one model's accelerator slots, the
// same in `serve` (ModelRuntime) and in a scale-out worker (WorkerRole), all
// labelled by model:
//   sluice_circuit_breaker_state{endpoint} (0 closed, 1 half-open, 2 open),
//   sluice_accelerator_utilization, _busy_slots, _slots, _healthy_slots,
//   sluice_retries_pending, sluice_capacity_rps (healthy slots x learnt
//   full-batch rate), sluice_throughput_per_device_rps,
//   sluice_batch_fixed_seconds, sluice_batch_per_item_seconds.
// The group, the cost model and `utilization` must outlive every render of
// the registry.
#pragma once

#include <functional>
#include <string>

#include "core/dispatch_group.h"
#include "limits/batch_cost_model.h"
#include "metrics/registry.h"

namespace sluice {

void AddDispatchGroupMetrics(metrics::Registry& registry, const std::string& model,
                             const DispatchGroup* group, const BatchCostModel* cost,
                             std::function<double()> utilization);

}  // namespace sluice
