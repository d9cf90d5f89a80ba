// BatchMetrics: what a model's DispatchGroup reports, turned into the same
// metrics and log lines in every role (`serve`, and `worker` in scale-out),
// so that a dashboard or `sluice bench` reads them the same way:
//   sluice_batch_size, sluice_accelerator_batch_seconds (histograms),
//   sluice_batches_total{outcome}, sluice_batch_retry_requests_total,
//   sluice_dead_letters_total, sluice_circuit_breaker_opened_total{endpoint},
// all labelled by model; plus the slots' busy time (Utilization()). Failed
// batches (with the backend's own words) and dead letters are logged at most
// once per 10 s each; breaker changes always.
//
// Thread-safety: the DispatchObserver calls come on the group's strand;
// Utilization() from any thread. The registry must outlive this object.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/log_throttle.h"
#include "core/dispatch_group.h"
#include "metrics/rate_meter.h"
#include "metrics/registry.h"

namespace sluice {

class BatchMetrics final : public DispatchObserver {
 public:
  struct Options {
    std::string model;  // the label; required
    // Top bucket of sluice_batch_size: the largest max_batch_size of all
    // models (a family's buckets must be the same for every model).
    size_t max_batch_size = 32;
    // The group's endpoints: their breakers' counters start at 0.
    std::vector<std::string> endpoint_names;
    metrics::Registry* registry = nullptr;  // required; not owned
    const Clock* clock = SystemClock();     // for busy time; not owned
    // Called on the strand after each successful batch (e.g. a throughput
    // estimator); may be empty.
    std::function<void(size_t batch_size, SteadyClock::duration time)> on_batch_ok;
  };
  // REQUIRES: registry and clock set.
  explicit BatchMetrics(Options options);

  // Busy fraction of `slots` accelerator slots over the last 10 s.
  double Utilization(size_t slots) const { return busy_.BusyFraction(slots); }

  void OnBatchDone(size_t slot, size_t batch_size, SteadyClock::duration accelerator_time,
                   bool ok) override;
  void OnBatchFailed(size_t slot, const Status& error) override;
  void OnRetry(size_t slot, size_t requests) override;
  void OnDeadLetter(size_t requests) override;
  void OnBreakerChange(size_t endpoint, const std::string& name, BreakerState state) override;
  // Starts the breaker counters of endpoints a reload added at 0.
  // Thread-safe.
  void AddEndpoints(const std::vector<std::string>& names);

 private:
  metrics::Counter* BreakerOpened(const std::string& endpoint);  // get or create

  const Options options_;
  metrics::BusyMeter busy_;
  metrics::Histogram* batch_size_ = nullptr;
  metrics::Histogram* batch_seconds_ = nullptr;
  metrics::Counter* batches_ok_ = nullptr;
  metrics::Counter* batches_failed_ = nullptr;
  metrics::Counter* retries_ = nullptr;
  metrics::Counter* dead_letters_ = nullptr;
  LogThrottle failure_warnings_;
  LogThrottle dead_letter_warnings_;
};

}  // namespace sluice
