#include "app/model_runtime.h"

#include <algorithm>
#include <optional>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/backend_slots.h"
#include "app/dispatch_metrics.h"
#include "config/scheduler_options.h"

namespace sluice {
namespace {

std::vector<std::string> EndpointNames(const DispatchGroup& group) {
  std::vector<std::string> names;
  for (size_t e = 0; e < group.endpoint_count(); ++e) names.push_back(group.endpoint_name(e));
  return names;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

ModelRuntime::ModelRuntime(IoContextPool& pool, const ModelConfig& config,
                           metrics::Registry* registry)
    : pool_(pool), config_(config), registry_(registry), executor_(pool.main()), running_(config) {}

ModelRuntime::~ModelRuntime() = default;

DispatchGroup::Options ModelRuntime::GroupOptions(const AppConfig& app, const ModelConfig& model) {
  DispatchGroup::Options g = SchedulerOptionsFor(app, model).dispatch;
  g.executor = &executor_;
  g.router = router_;
  g.dead_letters = dead_letters_;
  g.log = log_;
  g.tracer = tracer_;
  return g;
}

Result<std::unique_ptr<ModelRuntime>> ModelRuntime::Create(
    IoContextPool& pool, const AppConfig& app, const ModelConfig& model, ResultRouter* router,
    DeadLetterQueue* dead_letters, RequestLog* log, metrics::Registry* registry,
    const tracing::Tracer* tracer) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime(pool, model, registry));
  rt->router_ = router;
  rt->dead_letters_ = dead_letters;
  rt->log_ = log;
  rt->tracer_ = tracer;
  // One SimBackend per simulated device, or one HttpBackend per connection
  // to each endpoint (endpoints sharing a TLS setup share its context).
  auto built = MakeBackendSlots(pool, model, &rt->executor_, std::nullopt);
  if (!built.ok()) return built.status();
  ModelScheduler::Options so = SchedulerOptionsFor(app, model);
  so.dispatch = rt->GroupOptions(app, model);
  DispatchGroup::Options& g = so.dispatch;
  g.slot_endpoints = std::move(built->slot_endpoints);
  g.endpoint_names = std::move(built->endpoint_names);
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

  ModelRuntime* raw = rt.get();
  const BatchCostModel* cost = &rt->scheduler_->cost_model();
  AddDispatchGroupMetrics(*registry, model.name, rt->MetricsSource(), cost,
                          [raw] { return raw->Utilization(); });
  metrics::Labels labels{{"model", model.name}};
  registry->AddCallbackGauge("sluice_queue_depth", "Requests waiting in the model's queue.", labels,
                             [raw] { return static_cast<double>(raw->queue()->Depth()); });
  registry->AddCallbackGauge(
      "sluice_recommended_devices",
      "Devices the offered load needs at admission.target_utilization (up at once, down slowly).",
      labels, [raw] { return static_cast<double>(raw->recommended_devices()); });
  return rt;
}

Result<std::unique_ptr<ModelRuntime::Reload>> ModelRuntime::PrepareReload(const AppConfig& app,
                                                                          const ModelConfig& next) {
  auto reload = std::make_unique<Reload>();
  // What may change while the model runs; the rest keeps its running value.
  ModelConfig& m = reload->running;
  m = running_;
  m.max_batch_delay_us = next.max_batch_delay_us;
  // Only with the running max_batch_size (it may not exceed it).
  if (next.max_batch_size == running_.max_batch_size) {
    m.async_fill_max_batch_size = next.async_fill_max_batch_size;
  }
  m.batching = next.batching;
  m.accelerator_timeout_ms = next.accelerator_timeout_ms;
  m.retry = next.retry;
  m.circuit_breaker = next.circuit_breaker;
  if (next.backend.kind == running_.backend.kind) {
    m.backend.sim = next.backend.sim;
    m.backend.http = next.backend.http;
    m.backend.http.openai_api = running_.backend.http.openai_api;  // decides the task
  }
  const bool same_group =
      m.max_batch_delay_us == running_.max_batch_delay_us &&
      m.async_fill_max_batch_size == running_.async_fill_max_batch_size &&
      m.batching == running_.batching &&
      m.accelerator_timeout_ms == running_.accelerator_timeout_ms && m.retry == running_.retry &&
      m.circuit_breaker == running_.circuit_breaker && m.backend.sim == running_.backend.sim &&
      m.backend.http == running_.backend.http;
  if (!same_group) {
    auto built = MakeBackendSlots(pool_, m, &executor_, std::nullopt);
    if (!built.ok()) return InvalidArgument(built.status().message());
    DispatchGroup::Options g = GroupOptions(app, m);
    g.slot_endpoints = std::move(built->slot_endpoints);
    g.endpoint_names = std::move(built->endpoint_names);
    auto group = scheduler_->NewGroup(g, std::move(built->slots));
    if (!group.ok()) return InvalidArgument(group.status().message());
    reload->group = std::move(group).value();
  }
  if (scheduler_->admission() != nullptr) {
    reload->depth_limits = AdmissionOptionsFor(app, m).tiers;
  }
  reload->target_utilization = app.admission.target_utilization;
  return reload;
}

void ModelRuntime::ApplyReload(std::unique_ptr<Reload> reload) {
  if (reload->depth_limits) {
    Status st = scheduler_->admission()->SetQueueDepthLimits(*reload->depth_limits);
    if (!st.ok()) spdlog::error("model '{}': {}", config_.name, st.message());
  }
  // Validated with the file: it cannot fail here.
  (void)scheduler_->scaling().SetTargetUtilization(reload->target_utilization);
  running_ = std::move(reload->running);
  if (!reload->group) return;
  const std::vector<std::string> before = EndpointNames(*group());
  const std::vector<std::string> after = EndpointNames(*reload->group);
  // The new endpoints' metrics first, so that a scrape never misses one.
  batch_metrics_->AddEndpoints(after);
  for (const std::string& name : after) {
    if (!Contains(before, name))
      AddBreakerStateGauge(*registry_, config_.name, name, MetricsSource());
  }
  scheduler_->Replace(std::move(reload->group));
  for (const std::string& name : before) {
    if (!Contains(after, name)) {
      registry_->RemoveCallback(kBreakerStateMetric, BreakerStateLabels(config_.name, name));
    }
  }
  spdlog::info("model '{}': reloaded; endpoints {} (was {})", config_.name, fmt::join(after, ", "),
               fmt::join(before, ", "));
}

}  // namespace sluice
