#include "app/model_runtime.h"
#include <optional>

#include "app/backend_slots.h"
#include "app/dispatch_metrics.h"
#include "config/scheduler_options.h"

namespace sluice {

ModelRuntime::ModelRuntime(boost::asio::io_context& main, const ModelConfig& config)
    : config_(config), executor_(main) {}

Result<std::unique_ptr<ModelRuntime>> ModelRuntime::Create(
    IoContextPool& pool, const AppConfig& app, const ModelConfig& model, ResultRouter* router,
    DeadLetterQueue* dead_letters, RequestLog* log, metrics::Registry* registry,
    const tracing::Tracer* tracer) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime(pool.main(), model));
  // One SimBackend per simulated device, or one HttpBackend per connection
  // to each endpoint (endpoints sharing a TLS setup share its context).
  auto built = MakeBackendSlots(pool, model, &rt->executor_, std::nullopt);
  if (!built.ok()) return built.status();
  ModelScheduler::Options so = SchedulerOptionsFor(app, model);
  DispatchGroup::Options& g = so.dispatch;
  g.slot_endpoints = std::move(built->slot_endpoints);
  g.endpoint_names = std::move(built->endpoint_names);
  g.executor = &rt->executor_;
  g.router = router;
  g.dead_letters = dead_letters;
  g.log = log;
  g.tracer = tracer;
  BatchMetrics::Options bm;
  bm.model = model.name;
  bm.max_batch_size = LargestBatchSize(app);
  bm.endpoint_names = g.endpoint_names;
  bm.registry = registry;
  rt->batch_metrics_ = std::make_unique<BatchMetrics>(std::move(bm));
  so.observer = rt->batch_metrics_.get();
  auto scheduler = ModelScheduler::Create(std::move(so), std::move(built->slots));
  if (!scheduler.ok()) return scheduler.status();
  rt->scheduler_ = std::move(scheduler).value();
  DispatchGroup* group = &rt->scheduler_->group();

  ModelRuntime* raw = rt.get();
  const BatchCostModel* cost = &rt->scheduler_->cost_model();
  AddDispatchGroupMetrics(*registry, model.name, group, cost, [raw] { return raw->Utilization(); });
  metrics::Labels labels{{"model", model.name}};
  registry->AddCallbackGauge("sluice_queue_depth", "Requests waiting in the model's queue.", labels,
                             [raw] { return static_cast<double>(raw->queue()->Depth()); });
  registry->AddCallbackGauge(
      "sluice_recommended_devices",
      "Devices the offered load needs at admission.target_utilization (up at once, down slowly).",
      labels, [raw] { return static_cast<double>(raw->recommended_devices()); });
  return rt;
}

}  // namespace sluice
