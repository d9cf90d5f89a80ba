#include "app/model_runtime.h"

#include <algorithm>

#include "backends/http/http_backend.h"
#include "backends/sim/sim_backend.h"

namespace sluice {

ModelRuntime::ModelRuntime(boost::asio::io_context& ioc, const ModelConfig& config)
    : config_(config), executor_(ioc), busy_(SystemClock()) {}

namespace {

// One SimBackend per simulated device.
Status MakeSimSlots(const ModelConfig& model, Executor* executor,
                    std::vector<std::unique_ptr<Backend>>* slots) {
  const SimBackendConfig& sim = model.backend.sim;
  for (int d = 0; d < sim.devices; ++d) {
    SimBackend::Options o;
    o.model = model.name;
    o.model_version = model.version;
    o.device_index = d;
    o.fixed_latency_us = sim.fixed_latency_us;
    o.per_item_latency_us = sim.per_item_latency_us;
    o.jitter = sim.jitter;
    o.seed = sim.seed;
    o.executor = executor;
    auto b = SimBackend::Create(o);
    if (!b.ok()) return b.status();
    slots->push_back(std::move(b).value());
  }
  return Status::Ok();
}

// One HttpBackend (a keep-alive connection = one batch slot) per endpoint x
// connections_per_endpoint; endpoints sharing a TLS setup share its context.
Status MakeHttpSlots(boost::asio::io_context& ioc, const ModelConfig& model,
                     std::vector<std::unique_ptr<Backend>>* slots) {
  const HttpBackendConfig& http = model.backend.http;
  auto protocol = http_backend::ProtocolKindFor(model.backend.kind, http.openai_api);
  if (!protocol.ok()) return protocol.status();
  http_backend::TlsOptions tls;
  tls.ca_file = http.tls_ca_file;
  tls.cert_file = http.tls_cert_file;
  tls.key_file = http.tls_key_file;
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  for (const std::string& url : http.endpoints) {
    if (url.rfind("https://", 0) == 0 && !tls_context) {
      auto ctx = http_backend::MakeTlsContext(tls);
      if (!ctx.ok()) return ctx.status();
      tls_context = std::move(ctx).value();
    }
    for (int c = 0; c < http.connections_per_endpoint; ++c) {
      http_backend::HttpBackend::Options o;
      o.protocol = *protocol;
      o.url = url;
      o.model = http.remote_model.empty() ? model.name : http.remote_model;
      o.model_version = model.version;
      o.slot_index = static_cast<int>(slots->size());
      o.connect_timeout_ms = http.connect_timeout_ms;
      o.request_timeout_ms = http.request_timeout_ms;
      o.tls = tls;
      o.tls_context = tls_context;
      o.io_context = &ioc;
      auto b = http_backend::HttpBackend::Create(o);
      if (!b.ok()) return b.status();
      slots->push_back(std::move(b).value());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ModelRuntime>> ModelRuntime::Create(boost::asio::io_context& ioc,
                                                           const AppConfig& app,
                                                           const ModelConfig& model,
                                                           ResultRouter* router,
                                                           metrics::Registry* registry) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime(ioc, model));
  auto queue = MemoryQueue::Create({model.queue_capacity, app.ordering, app.tiers});
  if (!queue.ok()) return queue.status();
  rt->queue_ = std::move(queue).value();

  std::vector<std::unique_ptr<Backend>> slots;
  Status built = model.backend.kind == "sim" ? MakeSimSlots(model, &rt->executor_, &slots)
                                             : MakeHttpSlots(ioc, model, &slots);
  if (!built.ok()) return built;

  DispatchGroup::Options g;
  g.model = model.name;
  g.max_batch_size = model.max_batch_size;
  g.max_batch_delay_us = model.max_batch_delay_us;
  g.accelerator_timeout_us = model.accelerator_timeout_ms * 1000;
  g.executor = &rt->executor_;
  g.queue = rt->queue_.get();
  g.router = router;
  g.observer = rt.get();
  const size_t slots_count = slots.size();
  auto group = DispatchGroup::Create(g, std::move(slots));
  if (!group.ok()) return group.status();
  rt->group_ = std::move(group).value();

  const size_t n_slots = slots_count;
  rt->device_enabled_.assign(n_slots, true);
  if (app.admission.enabled) {
    AdmissionController::Options a;
    a.model = model.name;
    for (const TierPolicy& t : app.tiers) {
      size_t depth = t.max_queue_depth < 0    ? SeedMaxQueueDepth(t.name)
                     : t.max_queue_depth == 0 ? kNoQueueDepthLimit
                                              : static_cast<size_t>(t.max_queue_depth);
      a.tiers.push_back({t.name, t.priority, depth});
    }
    a.total_slots = n_slots;
    a.max_batch_size = model.max_batch_size;
    if (model.backend.kind == "sim") {  // else the seed's GPU until batches are measured
      // A zero-cost simulated device still takes some time per batch.
      a.prior_batch_fixed_us = std::max<int64_t>(1, model.backend.sim.fixed_latency_us);
      a.prior_batch_per_item_us = model.backend.sim.per_item_latency_us;
    }
    a.target_utilization = app.admission.target_utilization;
    auto admission = AdmissionController::Create(a);
    if (!admission.ok()) return admission.status();
    rt->admission_ = std::move(admission).value();
  }

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
  ModelRuntime* raw = rt.get();
  registry->AddCallbackGauge("sluice_queue_depth", "Requests waiting in the model's queue.", labels,
                             [raw] { return static_cast<double>(raw->queue_->Depth()); });
  registry->AddCallbackGauge("sluice_accelerator_utilization",
                             "Busy fraction of the model's accelerator slots over the last 10 s.",
                             labels, [raw] { return raw->Utilization(); });
  registry->AddCallbackGauge("sluice_accelerator_busy_slots",
                             "Accelerator slots running a batch right now.", labels,
                             [raw] { return static_cast<double>(raw->group_->busy_slots()); });
  registry->AddCallbackGauge("sluice_accelerator_slots", "Accelerator slots configured.", labels,
                             [raw] { return static_cast<double>(raw->group_->slot_count()); });
  registry->AddCallbackGauge("sluice_accelerator_healthy_slots", "Accelerator slots in service.",
                             labels, [raw] { return static_cast<double>(raw->enabled_devices()); });
  if (rt->admission_) {
    registry->AddCallbackGauge(
        "sluice_capacity_rps",
        "Admission capacity: healthy slots x measured throughput x target utilisation.", labels,
        [raw] { return raw->admission_->Snapshot().capacity_rps; });
    registry->AddCallbackGauge(
        "sluice_throughput_per_device_rps", "Measured throughput of one accelerator slot (EWMA).",
        labels, [raw] { return raw->admission_->Snapshot().throughput_per_slot_rps; });
    registry->AddCallbackGauge(
        "sluice_shedding_level",
        "Tiers shed by admission: 0 none, 1 the lowest tier, 2 the two lowest, ...", labels,
        [raw] { return static_cast<double>(raw->admission_->Snapshot().shedding_level); });
  }
  return rt;
}

void ModelRuntime::OnBatchDone(size_t slot, size_t batch_size,
                               SteadyClock::duration accelerator_time, bool ok) {
  busy_.AddBusy(accelerator_time);
  if (ok && admission_) admission_->OnBatch(batch_size, accelerator_time);
  batch_size_->Observe(static_cast<double>(batch_size));
  batch_seconds_->Observe(std::chrono::duration<double>(accelerator_time).count());
  (ok ? batches_ok_ : batches_failed_)->Inc();
}

}  // namespace sluice

namespace sluice {

Status ModelRuntime::SetDeviceEnabled(size_t index, bool enabled) {
  std::lock_guard lock(devices_mu_);
  if (index >= device_enabled_.size()) {
    return NotFound("model '" + config_.name + "' has no device " + std::to_string(index) +
                    " (devices: " + std::to_string(device_enabled_.size()) + ")");
  }
  device_enabled_[index] = enabled;
  group_->SetSlotEnabled(index, enabled);
  if (admission_) {
    size_t healthy = 0;
    for (bool e : device_enabled_) healthy += e;
    admission_->SetHealthySlots(healthy);
  }
  return Status::Ok();
}

size_t ModelRuntime::enabled_devices() const {
  std::lock_guard lock(devices_mu_);
  size_t n = 0;
  for (bool e : device_enabled_) n += e;
  return n;
}

}  // namespace sluice
