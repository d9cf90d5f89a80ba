// SchedulerOptionsFor(): the one mapping from a model's configuration to the
// options of its ModelScheduler (queue, dispatch, batch cost prior,
// admission), so that `sluice serve`, `sluice worker`, `sluice simulate` and
// `sluice plan` schedule a configured model identically.
#pragma once

#include "config/config.h"
#include "core/model_scheduler.h"

namespace sluice {

// Everything but the wiring: the caller sets dispatch.executor,
// dispatch.router and, as it has them, dispatch.slot_endpoints,
// endpoint_names, dead_letters, log and observer. Admission is set iff
// app.admission.enabled.
ModelScheduler::Options SchedulerOptionsFor(const AppConfig& app, const ModelConfig& model);

// The admission options of `model` (tiers and their depth thresholds);
// total_slots, cost_model and clock are left to the caller.
AdmissionController::Options AdmissionOptionsFor(const AppConfig& app, const ModelConfig& model);

// The prior batch cost of `model`: the simulator's cost model for sim
// backends, else the seed's GPU (34 ms + 0.5 ms per item) until batches are
// measured.
BatchCostModel::Options CostPriorFor(const ModelConfig& model);

// The largest max_batch_size of app's models: the top bucket of the batch
// size histogram, whose buckets are the same for every model.
size_t LargestBatchSize(const AppConfig& app);

}  // namespace sluice
