// ScalingAdvisor: how many accelerator devices a model should have, for an
// autoscaler or an operator (the seeds: GPUs at 70-80 % target, scale up
// fast, down slow). Not an admission input: admission uses every healthy
// device; this says how many to run so that they sit at the target.
//
//   needed = ceil(arrival_rps / (full-batch requests/s per device *
//                                target_utilization)), at least min_devices
// Up at once: a higher `needed` is recommended on the next Update(). Down
// slowly: only after `scale_down_cooldown_ms` without a change, and by at
// most `max_scale_down_fraction` of the current recommendation per step
// (at least one device).
//
// Thread-safety: Update() takes a short mutex; recommended() is lock-free.
// Ownership: `clock` is not owned and must outlive the advisor.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/clock.h"
#include "common/status.h"

namespace sluice {

class ScalingAdvisor {
 public:
  struct Options {
    double target_utilization = 0.75;          // (0, 1]: devices' planned busy fraction
    int64_t scale_down_cooldown_ms = 300'000;  // >= 0: quiet time before a step down
    double max_scale_down_fraction = 0.2;      // (0, 1]: largest step down
    size_t min_devices = 1;                    // >= 1
    const Clock* clock = nullptr;              // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<ScalingAdvisor>> Create(const Options& options);

  // Feeds the current offered load and per-device throughput; returns the
  // recommendation now in force.
  size_t Update(double arrival_rps, double per_device_rps);
  // The recommendation in force (min_devices before the first Update()).
  size_t recommended() const { return recommended_.load(std::memory_order_relaxed); }
  // Plans for `target` (a reload). Thread-safe. Errors: kInvalidArgument
  // outside (0, 1].
  Status SetTargetUtilization(double target);
  // What the load needs right now, before the scale-down damping.
  static size_t Needed(double arrival_rps, double per_device_rps, double target_utilization,
                       size_t min_devices);

 private:
  explicit ScalingAdvisor(const Options& options);

  const Options options_;
  std::atomic<double> target_utilization_;  // Options::target_utilization, or a reload's
  std::mutex mu_;
  TimePoint last_change_;  // GUARDED_BY(mu_)
  std::atomic<size_t> recommended_;
};

}  // namespace sluice
