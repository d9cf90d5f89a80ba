#include "app/model_runtime.h"

#include <algorithm>
#include <optional>

#include "app/backend_slots.h"
#include "config/scheduler_options.h"

namespace sluice {

ModelRuntime::ModelRuntime(boost::asio::io_context& ioc, const ModelConfig& config)
    : config_(config), executor_(ioc) {}

Result<std::unique_ptr<ModelRuntime>> ModelRuntime::Create(
    boost::asio::io_context& ioc, const AppConfig& app, const ModelConfig& model,
    ResultRouter* router, DeadLetterQueue* dead_letters, RequestLog* log,
    metrics::Registry* registry) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime(ioc, model));
  // One SimBackend per simulated device, or one HttpBackend per connection
  // to each endpoint (endpoints sharing a TLS setup share its context).
  auto built = MakeBackendSlots(ioc, model, &rt->executor_, std::nullopt);
  if (!built.ok()) return built.status();
  ModelScheduler::Options so = SchedulerOptionsFor(app, model);
  DispatchGroup::Options& g = so.dispatch;
  g.slot_endpoints = std::move(built->slot_endpoints);
  g.endpoint_names = std::move(built->endpoint_names);
  g.executor = &rt->executor_;
  g.router = router;
  g.dead_letters = dead_letters;
  g.log = log;
  BatchMetrics::Options bm;
  bm.model = model.name;
  bm.max_batch_size = model.max_batch_size;
  bm.endpoint_names = g.endpoint_names;
  bm.registry = registry;
  rt->batch_metrics_ = std::make_unique<BatchMetrics>(std::move(bm));
  so.observer = rt->batch_metrics_.get();
  auto scheduler = ModelScheduler::Create(std::move(so), std::move(built->slots));
  if (!scheduler.ok()) return scheduler.status();
  rt->scheduler_ = std::move(scheduler).value();
  DispatchGroup* group = &rt->scheduler_->group();

  metrics::Labels labels{{"model", model.name}};
  for (size_t e = 0; e < group->endpoint_count(); ++e) {
    metrics::Labels el{{"model", model.name}, {"endpoint", group->endpoint_name(e)}};
    registry->AddCallbackGauge("sluice_circuit_breaker_state",
                               "Endpoint circuit breaker: 0 closed, 1 half-open, 2 open.", el,
                               [group, e] {
                                 switch (group->endpoint_state(e)) {
                                   case BreakerState::kClosed:
                                     return 0.0;
                                   case BreakerState::kHalfOpen:
                                     return 1.0;
                                   case BreakerState::kOpen:
                                     return 2.0;
                                 }
                                 return 0.0;
                               });
  }
  ModelRuntime* raw = rt.get();
  registry->AddCallbackGauge("sluice_queue_depth", "Requests waiting in the model's queue.", labels,
                             [raw] { return static_cast<double>(raw->queue()->Depth()); });
  registry->AddCallbackGauge("sluice_accelerator_utilization",
                             "Busy fraction of the model's accelerator slots over the last 10 s.",
                             labels, [raw] { return raw->Utilization(); });
  registry->AddCallbackGauge("sluice_accelerator_busy_slots",
                             "Accelerator slots running a batch right now.", labels,
                             [raw] { return static_cast<double>(raw->group().busy_slots()); });
  registry->AddCallbackGauge("sluice_accelerator_slots", "Accelerator slots configured.", labels,
                             [raw] { return static_cast<double>(raw->group().slot_count()); });
  registry->AddCallbackGauge("sluice_accelerator_healthy_slots",
                             "Accelerator slots in service (enabled, breaker closed).", labels,
                             [raw] { return static_cast<double>(raw->enabled_devices()); });
  registry->AddCallbackGauge("sluice_retries_pending", "Requests waiting for a retry.", labels,
                             [raw] { return static_cast<double>(raw->group().retries_pending()); });
  BatchCostModel* cost = &rt->scheduler_->cost_model();
  registry->AddCallbackGauge(
      "sluice_capacity_rps",
      "Requests/s the healthy accelerator slots complete running full batches (learnt cost).",
      labels,
      [raw, cost] { return static_cast<double>(raw->enabled_devices()) * cost->FullBatchRps(); });
  registry->AddCallbackGauge(
      "sluice_throughput_per_device_rps",
      "Requests/s one accelerator slot completes with full batches (learnt).", labels,
      [cost] { return cost->FullBatchRps(); });
  registry->AddCallbackGauge(
      "sluice_recommended_devices",
      "Devices the offered load needs at admission.target_utilization (up at once, down slowly).",
      labels, [raw] { return static_cast<double>(raw->recommended_devices()); });
  registry->AddCallbackGauge("sluice_batch_fixed_seconds",
                             "Learnt cost of a batch: the fixed part.", labels,
                             [cost] { return cost->FixedMicros() / 1e6; });
  registry->AddCallbackGauge("sluice_batch_per_item_seconds",
                             "Learnt cost of a batch: the part per request.", labels,
                             [cost] { return cost->PerItemMicros() / 1e6; });
  return rt;
}

}  // namespace sluice
