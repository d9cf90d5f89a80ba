#include "app/model_runtime.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "app/backend_slots.h"
#include "config/scheduler_options.h"

namespace sluice {

ModelRuntime::ModelRuntime(boost::asio::io_context& ioc, const ModelConfig& config)
    : config_(config), executor_(ioc), busy_(SystemClock()) {}

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
  so.observer = rt.get();
  auto scheduler = ModelScheduler::Create(std::move(so), std::move(built->slots));
  if (!scheduler.ok()) return scheduler.status();
  rt->scheduler_ = std::move(scheduler).value();
  DispatchGroup* group = &rt->scheduler_->group();

  metrics::Labels labels{{"model", model.name}};
  std::vector<double> sizes;
  for (size_t b = 1; b < model.max_batch_size; b *= 2) sizes.push_back(static_cast<double>(b));
  sizes.push_back(static_cast<double>(model.max_batch_size));
  rt->batch_size_ =
      registry->GetHistogram("sluice_batch_size", "Requests per dispatched batch.", labels, sizes);
  rt->batch_seconds_ = registry->GetHistogram("sluice_accelerator_batch_seconds",
                                              "Time a batch spent on the accelerator.", labels,
                                              metrics::ExponentialBuckets(0.0005, 2, 14));
  rt->batches_ok_ = registry->GetCounter("sluice_batches_total", "Batches run, by outcome.",
                                         {{"model", model.name}, {"outcome", "ok"}});
  rt->batches_failed_ = registry->GetCounter("sluice_batches_total", "Batches run, by outcome.",
                                             {{"model", model.name}, {"outcome", "failed"}});
  rt->retries_ = registry->GetCounter("sluice_batch_retry_requests_total",
                                      "Requests of failed batches scheduled for a retry.", labels);
  rt->dead_letters_ = registry->GetCounter(
      "sluice_dead_letters_total",
      "Requests that failed every retry, moved to the dead-letter queue (answered 502).", labels);
  for (size_t e = 0; e < group->endpoint_count(); ++e) {
    metrics::Labels el{{"model", model.name}, {"endpoint", group->endpoint_name(e)}};
    rt->breaker_opened_.push_back(registry->GetCounter(
        "sluice_circuit_breaker_opened_total", "Times an endpoint's circuit breaker opened.", el));
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

void ModelRuntime::OnBatchDone(size_t slot, size_t batch_size,
                               SteadyClock::duration accelerator_time, bool ok) {
  busy_.AddBusy(accelerator_time);
  batch_size_->Observe(static_cast<double>(batch_size));
  batch_seconds_->Observe(std::chrono::duration<double>(accelerator_time).count());
  (ok ? batches_ok_ : batches_failed_)->Inc();
}

}  // namespace sluice

namespace sluice {

void ModelRuntime::OnBatchFailed(size_t slot, const Status& error) {
  // A backend failing every batch fails hundreds a second: one line per
  // interval, with the backend's own words (clients never see them).
  if (std::optional<uint64_t> held_back = batch_failure_warnings_.Allow()) {
    spdlog::warn("model '{}': batch on slot {} failed: {} ({} more failed batches not logged)",
                 config_.name, slot, error.message(), *held_back);
  }
}

void ModelRuntime::OnRetry(size_t slot, size_t requests) { retries_->Inc(requests); }

void ModelRuntime::OnDeadLetter(size_t requests) {
  dead_letters_->Inc(requests);
  if (std::optional<uint64_t> held_back = dead_letter_warnings_.Allow()) {
    spdlog::error(
        "model '{}': {} request(s) failed every retry; moved to the dead-letter queue ({} more "
        "such events not logged)",
        config_.name, requests, *held_back);
  }
}

void ModelRuntime::OnBreakerChange(size_t endpoint, BreakerState state) {
  const std::string& name = group().endpoint_name(endpoint);
  if (state == BreakerState::kOpen) {
    breaker_opened_[endpoint]->Inc();
    spdlog::warn("model '{}': circuit breaker for {} opened; its slots pull no work", config_.name,
                 name);
  } else {
    spdlog::info("model '{}': circuit breaker for {} is {}", config_.name, name,
                 BreakerStateName(state));
  }
}

}  // namespace sluice
