#include "simulation/capacity_plan.h"

#include <cmath>

#include <fmt/format.h>

#include "simulation/simulation.h"

namespace sluice {

namespace {

Status Validate(const PlanOptions& o) {
  auto bad = [](std::string_view field, std::string_view rule, double value) {
    return InvalidArgument(fmt::format("{}: must be {}, got {:g}", field, rule, value));
  };
  if (!(o.rate_rps > 0)) return bad("--rate", "> 0", o.rate_rps);
  if (!(o.peak_factor >= 1)) return bad("--peak", ">= 1", o.peak_factor);
  if (!(o.p95_ms > 0)) return bad("--p95-ms", "> 0", o.p95_ms);
  if (!(o.success > 0 && o.success <= 1)) return bad("--success", "in (0, 1]", o.success);
  if (!(o.trial_duration_s > 0)) return bad("--trial-duration", "> 0", o.trial_duration_s);
  if (!(o.warmup_s >= 0 && o.warmup_s < o.trial_duration_s)) {
    return bad("--warmup", "in [0, trial duration)", o.warmup_s);
  }
  if (o.max_devices < 1) return bad("--max-devices", ">= 1", o.max_devices);
  return Status::Ok();
}

Simulation::Options TrialOptions(const PlanOptions& o, int devices) {
  Simulation::Options so;
  so.model = o.model;
  so.devices = devices;
  Scenario& sc = so.scenario;
  sc.duration_s = o.trial_duration_s;
  sc.warmup_s = o.warmup_s;
  sc.rate_rps = o.rate_rps * o.peak_factor;
  sc.mix = o.mix;
  sc.arrivals = ArrivalKind::kPoisson;
  sc.seed = o.seed;
  return so;
}

Result<PlanTrial> RunTrial(const AppConfig& app, const PlanOptions& o, int devices) {
  auto sim = Simulation::Create(app, TrialOptions(o, devices));
  if (!sim.ok()) return sim.status();
  const SimulationReport r = (*sim)->Run();
  PlanTrial t;
  t.devices = devices;
  t.utilization = r.utilization;
  t.meets = true;
  for (const StreamReport& s : r.tiers) {
    if (s.offered == 0) continue;
    t.worst_success = std::min(t.worst_success, s.success_ratio);
    t.worst_p95_ms = std::max(t.worst_p95_ms, s.p95_ms);
    if (!t.meets) continue;  // keep the first reason
    if (s.success_ratio < o.success) {
      t.meets = false;
      t.verdict = fmt::format("{}: success {:.4f} < {:g}", s.name, s.success_ratio, o.success);
    } else if (!(s.p95_ms < o.p95_ms)) {
      t.meets = false;
      t.verdict = fmt::format("{}: p95 {:.1f} ms >= {:g} ms", s.name, s.p95_ms, o.p95_ms);
    }
  }
  if (r.unanswered + r.answered_twice > 0) {
    t.meets = false;
    t.verdict = fmt::format("scheduler bug: {} unanswered, {} answered twice", r.unanswered,
                            r.answered_twice);
  }
  if (t.meets) t.verdict = "meets the SLA";
  return t;
}

}  // namespace

Result<CapacityPlan> PlanCapacity(const AppConfig& app, const PlanOptions& o) {
  if (Status st = Validate(o); !st.ok()) return st;
  auto probe = Simulation::Create(app, TrialOptions(o, 1));
  if (!probe.ok()) return probe.status();
  CapacityPlan plan;
  plan.peak_rps = o.rate_rps * o.peak_factor;
  plan.device_capacity_rps = (*probe)->device_full_batch_rps();
  plan.target_utilization = app.admission.target_utilization;
  const double usable = plan.device_capacity_rps * plan.target_utilization;
  if (usable > 0) {
    plan.arithmetic_devices = static_cast<int>(std::ceil(o.rate_rps / usable));
    plan.arithmetic_peak_devices = static_cast<int>(std::ceil(plan.peak_rps / usable));
  }
  plan.lower_bound_devices =
      plan.device_capacity_rps > 0
          ? std::max(1, static_cast<int>(
                            std::ceil(o.success * plan.peak_rps / plan.device_capacity_rps - 1e-9)))
          : 1;
  plan.lower_bound_devices = std::min(plan.lower_bound_devices, o.max_devices);

  auto trial = [&](int devices) -> Result<bool> {
    auto t = RunTrial(app, o, devices);
    if (!t.ok()) return t.status();
    plan.trials.push_back(*t);
    return t->meets;
  };
  // Exponential steps up from the lower bound...
  int failing = plan.lower_bound_devices - 1;  // known (or assumed) to fail
  int meeting = 0;
  for (int step = 0;; step = step == 0 ? 1 : step * 2) {
    const int d = std::min(plan.lower_bound_devices + step, o.max_devices);
    auto met = trial(d);
    if (!met.ok()) return met.status();
    if (*met) {
      meeting = d;
      break;
    }
    failing = d;
    if (d == o.max_devices) return plan;  // devices stays 0: not found
  }
  // ... then bisection between the last failure and the first success.
  while (meeting - failing > 1) {
    const int mid = failing + (meeting - failing) / 2;
    auto met = trial(mid);
    if (!met.ok()) return met.status();
    (*met ? meeting : failing) = mid;
  }
  plan.devices = meeting;
  return plan;
}

std::string FormatCapacityPlan(const CapacityPlan& p, const PlanOptions& o) {
  std::string out = fmt::format(
      "SLA: every tier p95 < {:g} ms and success >= {:g}, at {:g} req/s x {:g} peak = {:g} "
      "req/s\n({} s of Poisson traffic per trial, mix {}, seed {})\n\n",
      o.p95_ms, o.success, o.rate_rps, o.peak_factor, p.peak_rps, o.trial_duration_s,
      FormatMix(o.mix), o.seed);
  out += fmt::format("{:>8} {:>6} {:>13} {:>13} {:>11}  {}\n", "devices", "meets", "worst success",
                     "worst p95 ms", "utilization", "verdict");
  for (const PlanTrial& t : p.trials) {
    out += fmt::format("{:>8} {:>6} {:>13.5f} {:>13.1f} {:>10.1f}%  {}\n", t.devices,
                       t.meets ? "yes" : "no", t.worst_success, t.worst_p95_ms, 100 * t.utilization,
                       t.verdict);
  }
  if (p.devices > 0) {
    out += fmt::format("\nsimulation: {} devices meet the SLA at the peak ({})\n", p.devices,
                       p.devices == p.lower_bound_devices
                           ? "fewer could not carry the peak even on full batches"
                           : fmt::format("{} do not", p.devices - 1));
  } else {
    out += fmt::format("\nsimulation: no device count up to {} meets the SLA\n", o.max_devices);
  }
  out += fmt::format(
      "arithmetic: {:.0f} req/s per device on full batches x {:g} target utilization = {:.0f} "
      "req/s per device\n  -> {} devices for {:g} req/s, {} devices for the {:g}x peak ({:g} "
      "req/s)\n",
      p.device_capacity_rps, p.target_utilization, p.device_capacity_rps * p.target_utilization,
      p.arithmetic_devices, o.rate_rps, p.arithmetic_peak_devices, o.peak_factor, p.peak_rps);
  return out;
}

}  // namespace sluice
