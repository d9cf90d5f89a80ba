// ModelRuntime: everything one configured model runs on in `sluice serve` —
// its ModelScheduler (queue, batch cost, admission, dispatch group) on
// accelerator slots built from the config, and its BatchMetrics. Built
// from ModelConfig by Create(); owns all of it. Its dispatchers run on the
// pool's main loop, its HTTP backend connections over the whole pool. Not
// copyable; destroy only after the pool stopped running.
//
// Reload. PrepareReload() compares the model in a reloaded config file with
// what the model runs on, among what can change while it runs:
//   its backend (endpoints, connections_per_endpoint, the timeouts,
//   remote_model, the TLS files; a sim's devices, latencies, jitter, seed),
//   its batching (max_batch_delay_us, async_fill_max_batch_size, batching,
//   accelerator_timeout_ms, retry, circuit_breaker),
//   admission's tier queue-depth bounds and target_utilization;
// the rest (max_batch_size, the backend's kind, openai_api, ...) keeps its
// running value. A change of backend or batching builds the model's next
// dispatch group (its backends connect lazily); ApplyReload() installs it
// (ModelScheduler::Replace: batches in flight finish on the old backends,
// nothing is refused meanwhile) and applies the admission bounds.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "app/batch_metrics.h"
#include "app/dispatch_metrics.h"
#include "common/asio_executor.h"
#include "common/io_context_pool.h"
#include "config/config.h"
#include "core/model_scheduler.h"
#include "metrics/registry.h"
#include "tracing/tracer.h"

namespace sluice {

class ModelRuntime {
 public:
  static Result<std::unique_ptr<ModelRuntime>> Create(IoContextPool& pool, const AppConfig& app,
                                                      const ModelConfig& model,
                                                      ResultRouter* router,
                                                      DeadLetterQueue* dead_letters,
                                                      RequestLog* log, metrics::Registry* registry,
                                                      const tracing::Tracer* tracer);

  // Starts the dispatchers (and the scaling updates). Thread-safe.
  void Start() { scheduler_->Start(); }
  RequestQueue* queue() { return scheduler_->queue(); }
  size_t recommended_devices() const { return scheduler_->scaling().recommended(); }
  // The model's dispatch group now (a reload may replace it). Any thread.
  std::shared_ptr<DispatchGroup> group() const { return scheduler_->group(); }
  // The model as configured at start (a reload does not change it).
  const ModelConfig& config() const { return config_; }
  BatchCostModel& cost_model() { return scheduler_->cost_model(); }
  // Busy fraction of this model's slots over the last 10 s.
  double Utilization() const { return batch_metrics_->Utilization(group()->slot_count()); }
  // Null when admission is disabled in the config.
  AdmissionController* admission() { return scheduler_->admission(); }
  // Takes device `index` out of service or back; admission's capacity
  // follows at once. Thread-safe. kNotFound for an unknown index.
  Status SetDeviceEnabled(size_t index, bool enabled) {
    return scheduler_->SetDeviceEnabled(index, enabled);
  }
  // Slots that can take work: enabled, and their endpoint's breaker closed.
  size_t enabled_devices() const { return group()->available_slots(); }
  // Slots running a batch, those of groups a reload retired included.
  size_t busy_slots() const { return scheduler_->busy_slots(); }
  // Answers what is in flight (shutdown); see ModelScheduler.
  void AbortInFlight(Status status) { scheduler_->AbortInFlight(std::move(status)); }

  // A prepared reload (see "Reload"), for ApplyReload() only.
  struct Reload {
    ModelConfig running;                                     // what the model runs on once applied
    std::unique_ptr<DispatchGroup> group;                    // null: the group stays
    std::optional<std::vector<AdmissionTier>> depth_limits;  // admission on
    double target_utilization = 0.75;
  };
  // `next`: this model in the reloaded file `app`. Touches nothing that
  // runs. Errors: kInvalidArgument (e.g. a TLS file that does not load).
  // REQUIRES: one reload at a time (ConfigReloader).
  Result<std::unique_ptr<Reload>> PrepareReload(const AppConfig& app, const ModelConfig& next);
  // Applies `reload` (from PrepareReload(), of the latest state). Thread-safe
  // with serving; REQUIRES: one reload at a time.
  void ApplyReload(std::unique_ptr<Reload> reload);
  ~ModelRuntime();

 private:
  ModelRuntime(IoContextPool& pool, const ModelConfig& config, metrics::Registry* registry);
  // The dispatch group's options for `model` in `app`, its slots' wiring aside.
  DispatchGroup::Options GroupOptions(const AppConfig& app, const ModelConfig& model);
  // group(), for the metrics (read at each render).
  GroupSource MetricsSource() {
    return [this] { return std::shared_ptr<const DispatchGroup>(group()); };
  }

  IoContextPool& pool_;
  const ModelConfig config_;
  metrics::Registry* const registry_;
  ResultRouter* router_ = nullptr;
  DeadLetterQueue* dead_letters_ = nullptr;
  RequestLog* log_ = nullptr;
  const tracing::Tracer* tracer_ = nullptr;
  AsioExecutor executor_;
  std::unique_ptr<ModelScheduler> scheduler_;
  std::unique_ptr<BatchMetrics> batch_metrics_;  // the group's observer
  // What runs now: config_ with the reloads applied (one reload at a time).
  ModelConfig running_;
};

}  // namespace sluice
