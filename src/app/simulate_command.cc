#include "app/simulate_command.h"

#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "simulation/simulation.h"

namespace sluice {

namespace {

constexpr const char* kFooter = R"(
Runs the scheduler `sluice serve` runs (queue, admission, adaptive batching,
retries, circuit breakers) for one model, on simulated devices, in virtual
time: an hour of traffic takes seconds. Per-key rate limits are not applied.

Events (--event, repeatable):
  TIME:ACTION[:DEVICES]   ACTION at TIME;  T1-T2:ACTION[:DEVICES]  and undone at T2
  ACTION: down | up (the device fails every batch / works again),
          disable | enable (taken out of service / put back),
          outage (every device down)
  DEVICES: N, N-M or all (default);  TIME: 30s, 1500ms, 2m (bare: seconds)
Hostile clients (--hostile, repeatable): RATE:DEADLINE_MS[:T1-T2], free-tier
  requests at RATE/s, each with a client deadline of DEADLINE_MS.
Bursty arrivals: every --burst-period starts with --burst-on of it at
  --burst-factor x the rate; the rest runs slower so the mean stays --rate.

Report: per tier and hostile client, by arrival time after --warmup: offered,
200s, refusals (503/400, by reason), 504, 502, p50/p95/p99 latency of the
200s; goodput, device utilization, batches. --json prints schema
sluice-simulate/1 (see src/simulation/simulation_report.h).

Exit status: 0 the run completed, 1 some request was answered twice or never
(a scheduler bug), 2 bad arguments or configuration.

Example:
  sluice simulate --rate 3000 --duration 60 --event 20s-28s:outage --hostile 40:5)";

}  // namespace

std::unique_ptr<SimulateCommand> SimulateCommand::Register(CLI::App& app) {
  std::unique_ptr<SimulateCommand> s(new SimulateCommand());
  CLI::App* c = app.add_subcommand(
      "simulate",
      "Run the real scheduler of one model in virtual time against a load scenario "
      "with faults; report per tier.");
  s->command_ = c;
  c->footer(kFooter);
  c->add_option("-c,--config", s->config_path_, "YAML configuration file")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  c->add_option("--model", s->model_, "Model to simulate (default: the first)");
  c->add_option("--devices", s->devices_, "Devices (default: the configuration's)")
      ->check(CLI::Range(1, 100'000));
  c->add_option("--rate", s->rate_, "Offered requests per second, all tiers together")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--duration", s->duration_, "Virtual time of traffic (60, 60s, 1h...)")
      ->capture_default_str();
  c->add_option("--warmup", s->warmup_, "First part of --duration left out of the totals")
      ->capture_default_str();
  c->add_option("--mix", s->mix_, "Tier weights, TIER=WEIGHT,...")->capture_default_str();
  c->add_option("--arrivals", s->arrivals_, "constant, poisson or bursty")
      ->capture_default_str()
      ->check(CLI::IsMember({"constant", "poisson", "bursty"}));
  c->add_option("--burst-factor", s->burst_factor_, "Bursty: rate in a burst / mean rate")
      ->capture_default_str();
  c->add_option("--burst-on", s->burst_on_fraction_, "Bursty: fraction of a period in a burst")
      ->capture_default_str();
  c->add_option("--burst-period", s->burst_period_, "Bursty: length of a burst + lull")
      ->capture_default_str();
  c->add_option("--seed", s->seed_, "Seed of arrivals, tier draws and jitter")
      ->capture_default_str();
  c->add_option("--event", s->events_, "A device event, e.g. 30s:down:0-7 (see below)")
      ->allow_extra_args(false);
  c->add_option("--hostile", s->hostile_, "A hostile client RATE:DEADLINE_MS, e.g. 40:5")
      ->allow_extra_args(false);
  c->add_option("--input-bytes", s->input_bytes_, "Size of every input (>= 17)")
      ->capture_default_str()
      ->check(CLI::Range(17, 1 << 20));
  c->add_option("--max-tokens", s->max_tokens_, "parameters.max_tokens of every request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  c->add_flag("--json", s->json_, "Print the report as JSON (schema sluice-simulate/1)");
  c->add_flag("--series", s->series_, "With --json: add per-second series");
  return s;
}

bool SimulateCommand::selected() const { return command_ != nullptr && command_->parsed(); }

int SimulateCommand::Run() {
  const auto fail = [](const Status& s, int code) {
    std::fprintf(stderr, "sluice simulate: %s\n", s.message().c_str());
    return code;
  };
  auto config = LoadConfigFile(config_path_);
  if (!config.ok()) return fail(config.status(), 2);

  Simulation::Options o;
  o.model = model_;
  o.devices = devices_;
  Scenario& sc = o.scenario;
  struct {
    const std::string& text;
    const char* flag;
    double* out_s;
  } durations[] = {{duration_, "--duration", &sc.duration_s},
                   {warmup_, "--warmup", &sc.warmup_s},
                   {burst_period_, "--burst-period", &sc.burst_period_s}};
  for (auto& d : durations) {
    auto seconds = ParseDurationS(d.text, d.flag);
    if (!seconds.ok()) return fail(seconds.status(), 2);
    *d.out_s = *seconds;
  }
  sc.rate_rps = rate_;
  auto mix = ParseMix(mix_);
  if (!mix.ok()) return fail(mix.status(), 2);
  sc.mix = std::move(mix).value();
  auto arrivals = ParseArrivalKind(arrivals_);
  if (!arrivals.ok()) return fail(arrivals.status(), 2);
  sc.arrivals = *arrivals;
  sc.burst_factor = burst_factor_;
  sc.burst_on_fraction = burst_on_fraction_;
  sc.seed = seed_;
  sc.input_bytes = input_bytes_;
  sc.max_tokens = max_tokens_;
  for (const std::string& e : events_) {
    if (Status st = ParseEvent(e, &sc.events); !st.ok()) return fail(st, 2);
  }
  for (const std::string& h : hostile_) {
    auto client = ParseHostile(h);
    if (!client.ok()) return fail(client.status(), 2);
    sc.hostile.push_back(std::move(client).value());
  }

  auto sim = Simulation::Create(config.value(), o);
  if (!sim.ok()) return fail(sim.status(), 2);
  const auto wall_start = std::chrono::steady_clock::now();
  const SimulationReport report = (*sim)->Run();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const std::string text = json_ ? ReportJson(report, series_) : FormatReportTable(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fprintf(stderr, "(%.0f s of virtual time, %llu events, in %.2f s of wall time)\n",
               report.duration_s, static_cast<unsigned long long>(report.events), wall_s);
  return report.answered_twice + report.unanswered > 0 ? 1 : 0;
}

}  // namespace sluice
