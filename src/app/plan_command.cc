#include "app/plan_command.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "simulation/capacity_plan.h"
#include "simulation/scenario.h"

namespace sluice {

namespace {

constexpr const char* kFooter = R"(
Each trial simulates --trial-duration of Poisson traffic at --rate x --peak
through the real scheduler (as `sluice simulate`); a device count meets the
SLA when every tier's p95 latency of its 200s is below --p95-ms and its
success ratio (200s / offered, after --warmup) is at least --success. The
search starts at the fewest devices that could carry the peak on full
batches, steps up exponentially, then bisects.

Beside it, the arithmetic: per-device capacity = max_batch_size / full-batch
time; devices = ceil(rate / (capacity x admission.target_utilization)).

Exit status: 0 found, 1 nothing up to --max-devices meets the SLA, 2 bad
arguments or configuration.

Example:
  sluice plan --rate 10000 --p95-ms 400 --peak 3)";

}  // namespace

std::unique_ptr<PlanCommand> PlanCommand::Register(CLI::App& app) {
  std::unique_ptr<PlanCommand> p(new PlanCommand());
  CLI::App* c =
      app.add_subcommand("plan",
                         "Find the fewest devices that meet a p95 and success SLA at peak load, by "
                         "simulating the real scheduler.");
  p->command_ = c;
  c->footer(kFooter);
  c->add_option("-c,--config", p->config_path_, "YAML configuration file")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  c->add_option("--model", p->model_, "Model to plan for (default: the first)");
  c->add_option("--rate", p->rate_, "Average offered requests per second")
      ->required()
      ->check(CLI::PositiveNumber);
  c->add_option("--mix", p->mix_, "Tier weights, TIER=WEIGHT,...")->capture_default_str();
  c->add_option("--p95-ms", p->p95_ms_, "SLA: p95 latency of every tier's 200s below this")
      ->required()
      ->check(CLI::PositiveNumber);
  c->add_option("--peak", p->peak_, "Peak / average rate: the SLA must hold at the peak")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1000.0));
  c->add_option("--success", p->success_, "SLA: 200s / offered of every tier at least this")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--trial-duration", p->trial_duration_, "Virtual traffic per trial")
      ->capture_default_str();
  c->add_option("--warmup", p->warmup_, "Start of each trial not judged")->capture_default_str();
  c->add_option("--seed", p->seed_, "Seed of the trials' arrivals")->capture_default_str();
  c->add_option("--max-devices", p->max_devices_, "Give up beyond this many devices")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  return p;
}

bool PlanCommand::selected() const { return command_ != nullptr && command_->parsed(); }

int PlanCommand::Run() {
  const auto fail = [](const Status& s, int code) {
    std::fprintf(stderr, "sluice plan: %s\n", s.message().c_str());
    return code;
  };
  auto config = LoadConfigFile(config_path_);
  if (!config.ok()) return fail(config.status(), 2);
  PlanOptions o;
  o.model = model_;
  o.rate_rps = rate_;
  o.peak_factor = peak_;
  o.p95_ms = p95_ms_;
  o.success = success_;
  o.seed = seed_;
  o.max_devices = max_devices_;
  auto mix = ParseMix(mix_);
  if (!mix.ok()) return fail(mix.status(), 2);
  o.mix = std::move(mix).value();
  auto trial = ParseDurationS(trial_duration_, "--trial-duration");
  if (!trial.ok()) return fail(trial.status(), 2);
  o.trial_duration_s = *trial;
  auto warmup = ParseDurationS(warmup_, "--warmup");
  if (!warmup.ok()) return fail(warmup.status(), 2);
  o.warmup_s = *warmup;

  auto plan = PlanCapacity(config.value(), o);
  if (!plan.ok()) return fail(plan.status(), 2);
  const std::string text = FormatCapacityPlan(*plan, o);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return plan->devices > 0 ? 0 : 1;
}

}  // namespace sluice
