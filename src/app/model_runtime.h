// ModelRuntime: everything one configured model runs on in `sluice serve` —
// its ModelScheduler (queue, batch cost, admission, dispatch group) on
// accelerator slots built from the config, and its BatchMetrics. Built
// from ModelConfig by Create(); owns all of it. Its dispatchers run on the
// pool's main loop, its HTTP backend connections over the whole pool. Not
// copyable; destroy only after the pool stopped running.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "app/batch_metrics.h"
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
  DispatchGroup& group() { return scheduler_->group(); }
  const ModelConfig& config() const { return config_; }
  BatchCostModel& cost_model() { return scheduler_->cost_model(); }
  // Busy fraction of this model's slots over the last 10 s.
  double Utilization() const {
    return batch_metrics_->Utilization(scheduler_->group().slot_count());
  }
  // Null when admission is disabled in the config.
  AdmissionController* admission() { return scheduler_->admission(); }
  // Takes device `index` out of service or back; admission's capacity
  // follows at once. Thread-safe. kNotFound for an unknown index.
  Status SetDeviceEnabled(size_t index, bool enabled) {
    return scheduler_->SetDeviceEnabled(index, enabled);
  }
  // Slots that can take work: enabled, and their endpoint's breaker closed.
  size_t enabled_devices() const { return scheduler_->group().available_slots(); }

 private:
  explicit ModelRuntime(boost::asio::io_context& main, const ModelConfig& config);

  const ModelConfig config_;
  AsioExecutor executor_;
  std::unique_ptr<ModelScheduler> scheduler_;
  std::unique_ptr<BatchMetrics> batch_metrics_;  // the group's observer
};

}  // namespace sluice
