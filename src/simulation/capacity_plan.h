// Capacity planning by simulation: the fewest devices on which the real
// scheduler meets a latency and success SLA for every tier at peak load
// (`sluice plan`), set beside the back-of-envelope arithmetic.
//
// Search. The SLA is met by d devices when, simulating `trial_duration_s`
// of Poisson traffic at rate_rps * peak_factor, every tier of the mix that
// was offered traffic has p95 latency of its 200s below p95_ms and success
// ratio (200s / offered) at least `success`. Fewer devices than
// ceil(success * peak rate / full-batch throughput per device) cannot meet
// it (they could not serve that many requests even with full batches), so
// the search starts there: it tries that count, then +1, +2, +4, ... until
// one meets the SLA, then bisects between the last failure and it. It
// assumes that more devices never hurt.
//
// Arithmetic. per-device capacity = max_batch_size / (time of a full
// batch); devices = ceil(rate / (capacity * target_utilization)), and the
// same at rate * peak_factor (target_utilization: the configuration's
// admission.target_utilization).
//
// Cost: one simulation per trial (usually a handful); each takes about a
// microsecond of wall time per request. Pure function of its inputs;
// thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "simulation/scenario.h"

namespace sluice {

struct PlanOptions {
  std::string model;        // the configured model; empty = the first
  double rate_rps = 1'000;  // average offered load, requests/s, > 0
  double peak_factor = 3;   // the SLA must hold at rate_rps * peak_factor; >= 1
  double p95_ms = 1'000;    // SLA: p95 latency of the 200s of every tier below this, > 0
  double success = 0.999;   // SLA: 200s / offered of every tier at least this, (0, 1]
  std::vector<TierShare> mix = Scenario().mix;
  double trial_duration_s = 60;  // virtual seconds simulated per trial, > 0
  double warmup_s = 5;           // of each trial, not judged; [0, trial_duration_s)
  uint64_t seed = 1;
  int max_devices = 4'096;  // give up beyond this many devices
};

// What one simulated device count gave.
struct PlanTrial {
  int devices = 0;
  bool meets = false;
  double worst_success = 1;  // lowest success ratio over the tiers
  double worst_p95_ms = 0;   // highest p95 over the tiers
  double utilization = 0;
  std::string verdict;  // why it failed ("free: success 0.982 < 0.999"), or "meets the SLA"
};

struct CapacityPlan {
  int devices = 0;                  // the answer; 0 when even max_devices did not meet the SLA
  std::vector<PlanTrial> trials;    // in the order run
  double peak_rps = 0;              // rate_rps * peak_factor
  double device_capacity_rps = 0;   // max_batch_size / full batch time
  double target_utilization = 0;    // admission.target_utilization
  int arithmetic_devices = 0;       // ceil(rate / (capacity * target_utilization))
  int arithmetic_peak_devices = 0;  // the same at the peak rate
  int lower_bound_devices = 0;      // where the search started
};

// Errors: kInvalidArgument for options out of range or anything
// Simulation::Create() refuses.
Result<CapacityPlan> PlanCapacity(const AppConfig& app, const PlanOptions& options);

// A readable account: the trials, the answer and the arithmetic.
std::string FormatCapacityPlan(const CapacityPlan& plan, const PlanOptions& options);

}  // namespace sluice
