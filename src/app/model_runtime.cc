#include "app/model_runtime.h"

#include "backends/sim/sim_backend.h"

namespace sluice {

ModelRuntime::ModelRuntime(boost::asio::io_context& ioc, const ModelConfig& config)
    : config_(config), executor_(ioc), busy_(SystemClock()) {}

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
  if (model.backend.kind != "sim") {
    return InvalidArgument("model '" + model.name + "': unknown backend kind '" +
                           model.backend.kind + "'");
  }
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
    o.executor = &rt->executor_;
    auto b = SimBackend::Create(o);
    if (!b.ok()) return b.status();
    slots.push_back(std::move(b).value());
  }

  DispatchGroup::Options g;
  g.model = model.name;
  g.max_batch_size = model.max_batch_size;
  g.max_batch_delay_us = model.max_batch_delay_us;
  g.accelerator_timeout_us = model.accelerator_timeout_ms * 1000;
  g.executor = &rt->executor_;
  g.queue = rt->queue_.get();
  g.router = router;
  g.observer = rt.get();
  auto group = DispatchGroup::Create(g, std::move(slots));
  if (!group.ok()) return group.status();
  rt->group_ = std::move(group).value();

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
