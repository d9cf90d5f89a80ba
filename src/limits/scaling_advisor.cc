#include "limits/scaling_advisor.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace sluice {

Result<std::unique_ptr<ScalingAdvisor>> ScalingAdvisor::Create(const Options& o) {
  auto bad = [](const char* field, const char* rule, double got) {
    return InvalidArgument(std::string("scaling.") + field + ": must be " + rule + ", got " +
                           std::to_string(got));
  };
  if (!(o.target_utilization > 0 && o.target_utilization <= 1)) {
    return bad("target_utilization", "in (0, 1]", o.target_utilization);
  }
  if (o.scale_down_cooldown_ms < 0) {
    return bad("scale_down_cooldown_ms", ">= 0", static_cast<double>(o.scale_down_cooldown_ms));
  }
  if (!(o.max_scale_down_fraction > 0 && o.max_scale_down_fraction <= 1)) {
    return bad("max_scale_down_fraction", "in (0, 1]", o.max_scale_down_fraction);
  }
  if (o.min_devices < 1) return bad("min_devices", ">= 1", 0);
  Options resolved = o;
  if (resolved.clock == nullptr) resolved.clock = SystemClock();
  return std::unique_ptr<ScalingAdvisor>(new ScalingAdvisor(resolved));
}

ScalingAdvisor::ScalingAdvisor(const Options& options)
    : options_(options),
      target_utilization_(options.target_utilization),
      last_change_(options.clock->Now()),
      recommended_(options.min_devices) {}

Status ScalingAdvisor::SetTargetUtilization(double target) {
  if (!(target > 0 && target <= 1)) {
    return InvalidArgument("target_utilization must be in (0, 1], got " + std::to_string(target));
  }
  target_utilization_.store(target, std::memory_order_relaxed);
  return Status::Ok();
}

size_t ScalingAdvisor::Needed(double arrival_rps, double per_device_rps, double target_utilization,
                              size_t min_devices) {
  if (!(per_device_rps > 0) || !(arrival_rps > 0)) return min_devices;
  const double n = std::ceil(arrival_rps / (per_device_rps * target_utilization) - 1e-9);
  return std::max(min_devices, static_cast<size_t>(n));
}

size_t ScalingAdvisor::Update(double arrival_rps, double per_device_rps) {
  const TimePoint now = options_.clock->Now();
  const size_t needed =
      Needed(arrival_rps, per_device_rps, target_utilization_.load(std::memory_order_relaxed),
             options_.min_devices);
  std::lock_guard lock(mu_);
  const size_t current = recommended_.load(std::memory_order_relaxed);
  size_t next = current;
  if (needed > current) {
    next = needed;  // up at once
  } else if (needed < current &&
             now - last_change_ >= std::chrono::milliseconds(options_.scale_down_cooldown_ms)) {
    const size_t step =
        std::max<size_t>(1, static_cast<size_t>(std::floor(static_cast<double>(current) *
                                                           options_.max_scale_down_fraction)));
    next = std::max(needed, current - std::min(step, current - needed));
  }
  if (next != current) {
    recommended_.store(next, std::memory_order_relaxed);
    last_change_ = now;
  } else if (needed >= current) {
    last_change_ = now;  // the load still needs these: the quiet time restarts
  }
  return next;
}

}  // namespace sluice
