#include "app/bench_command.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "loadgen/bench_runner.h"
#include "loadgen/report.h"
#include "loadgen/workload.h"

namespace sluice {

namespace lg = loadgen;

namespace {

constexpr const char* kFooter = R"(
Open loop: requests leave at their scheduled times whatever the responses do,
and latency counts from the scheduled time, so a slow server cannot hide its
queueing. A request that finds every connection busy waits for one (the wait
counts); the report says how often, and whether the generator itself fell
behind its schedule (then the offered load was lower than asked).

Keys file (--keys): one `TIER KEY` per line, `#` starts a comment. Without it
the demo keys of config/sluice.yaml are used: sk-free-demo-0001,
sk-paid-demo-0001, sk-enterprise-demo-0001.

Durations: 10s, 500ms, 2m (a bare number is seconds).

Report: per tier and overall, offered and achieved (200) rate, 200/429/503/504/
other counts, p50..p99.9/max latency of the 200s; Sluice's own overhead from
the Server-Timing header; batch sizes and accelerator utilisation from
/metrics (needs --service-token). --json prints one JSON document (schema
"sluice-bench/1"; fields documented in src/loadgen/report.h).

Exit status: 0 the run completed, 1 it could not run (unreachable target,
rejected key, unknown model), 2 bad arguments.

Example:
  sluice bench --rate 5000 --duration 30s --mix free=70,paid=25,enterprise=5 --json)";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("--keys: cannot read `" + path + "`");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void PrintProgress(const lg::ProgressSample& s, size_t steps) {
  const std::string phase = s.step < 0 ? std::string("warm-up")
                            : s.step >= static_cast<int>(steps)
                                ? std::string("draining")
                                : fmt::format("step {}/{}", s.step + 1, steps);
  std::fprintf(stderr,
               "\r\033[K%6.1fs %-10s target %.0f/s  offered %.0f/s  completed %.0f/s  errors "
               "%llu  p95 %.2f ms  waiting %llu  late %llu",
               s.elapsed_s, phase.c_str(), s.target_rate, s.offered_per_s, s.completed_per_s,
               static_cast<unsigned long long>(s.errors), s.p95_ms,
               static_cast<unsigned long long>(s.waiting), static_cast<unsigned long long>(s.late));
  std::fflush(stderr);
}

}  // namespace

std::unique_ptr<BenchCommand> BenchCommand::Register(CLI::App& app) {
  std::unique_ptr<BenchCommand> b(new BenchCommand());
  CLI::App* c = app.add_subcommand(
      "bench",
      "Open-loop load generator: offer a fixed rate with a tier mix, report latency "
      "per tier (no coordinated omission).");
  b->command_ = c;
  c->footer(kFooter);
  c->add_option("--url", b->url_, "Gateway base URL (http only)")->capture_default_str();
  auto* rate =
      c->add_option("--rate", b->rate_, "Requests per second to offer")->capture_default_str();
  c->add_option("--ramp", b->ramp_,
                "Rate steps, e.g. 1000,2000,4000: each runs for --duration and is reported "
                "on its own (instead of --rate)")
      ->excludes(rate);
  c->add_option("--duration", b->duration_, "Measured time (per step with --ramp)")
      ->capture_default_str();
  c->add_option("--warmup", b->warmup_, "Load before measuring, at the first rate; not counted")
      ->capture_default_str();
  c->add_option("--connections", b->connections_,
                "Keep-alive connections in total (about rate x latency are needed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  c->add_option("--threads", b->threads_, "Load-generating threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  c->add_flag("--poisson", b->poisson_,
              "Poisson arrivals (exponential gaps) instead of even spacing");
  c->add_option("--keys", b->keys_path_, "File of `TIER KEY` lines (default: the demo keys)")
      ->check(CLI::ExistingFile);
  c->add_option("--mix", b->mix_, "Tier weights, TIER=WEIGHT,...")->capture_default_str();
  c->add_option("--model", b->models_,
                "Model to call; repeat, or NAME=WEIGHT,... for a weighted mix")
      ->capture_default_str()
      ->allow_extra_args(false);  // one value per --model
  c->add_option("--input-bytes", b->input_bytes_,
                "Size of each input: N, or N-M for uniform sizes (>= 17)")
      ->capture_default_str();
  c->add_option("--input-dist", b->input_dist_,
                "unique (every input distinct) or zipf:S (inputs drawn from --input-pool "
                "distinct ones, input k weighing 1/k^S: hot inputs repeat)")
      ->capture_default_str();
  c->add_option("--input-pool", b->input_pool_, "Distinct inputs of --input-dist zipf:S")
      ->capture_default_str();
  c->add_option("--max-tokens", b->max_tokens_, "parameters.max_tokens (0: leave it out)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1'000'000));
  c->add_option("--api", b->api_,
                "inference (POST /v1/inference), openai-embeddings (POST /v1/embeddings, one text "
                "each) or openai-chat (POST /v1/chat/completions, streamed: the report adds the "
                "time to the first token)")
      ->capture_default_str();
  c->add_flag("--async", b->async_,
              "Submit asynchronously (Prefer: respond-async): a 202 counts as answered, and the "
              "latencies are the submissions'");
  c->add_option("--service-token", b->service_token_,
                "Token for GET /metrics (batch sizes, utilisation); empty: do not scrape")
      ->capture_default_str();
  c->add_option("--drain-timeout", b->drain_timeout_,
                "After the last step, wait this long for answers; the rest count as timeouts")
      ->capture_default_str();
  c->add_option("--connect-timeout", b->connect_timeout_, "To reach the gateway at the start")
      ->capture_default_str();
  c->add_option("--late-threshold", b->late_threshold_,
                "A request the generator sends later than this after its scheduled time is "
                "counted late")
      ->capture_default_str();
  c->add_option("--seed", b->seed_, "Seed for arrivals and request draws")->capture_default_str();
  c->add_flag("--json", b->json_, "Print the report as JSON (schema sluice-bench/1)");
  return b;
}

bool BenchCommand::selected() const { return command_ != nullptr && command_->parsed(); }

int BenchCommand::Run() {
  const auto fail = [](const Status& s, int code) {
    std::fprintf(stderr, "sluice bench: %s\n", s.message().c_str());
    return code;
  };
  lg::BenchOptions o;
  o.url = url_;
  auto duration = lg::ParseDurationUs(duration_, "--duration");
  if (!duration.ok()) return fail(duration.status(), 2);
  std::vector<double> rates{rate_};
  if (!ramp_.empty()) {
    auto r = lg::ParseRateList(ramp_, "--ramp");
    if (!r.ok()) return fail(r.status(), 2);
    rates = *r;
  }
  for (double r : rates) o.steps.push_back({r, *duration});
  struct {
    const std::string& text;
    const char* flag;
    int64_t* out;
  } durations[] = {{warmup_, "--warmup", &o.warmup_us},
                   {drain_timeout_, "--drain-timeout", &o.drain_timeout_us},
                   {connect_timeout_, "--connect-timeout", &o.connect_timeout_us},
                   {late_threshold_, "--late-threshold", &o.late_threshold_us}};
  for (auto& d : durations) {
    auto v = lg::ParseDurationUs(d.text, d.flag);
    if (!v.ok()) return fail(v.status(), 2);
    *d.out = *v;
  }
  if (o.connect_timeout_us <= 0) return fail(InvalidArgument("--connect-timeout: must be > 0"), 2);
  o.poisson = poisson_;
  o.connections = connections_;
  o.threads = threads_;
  o.service_token = service_token_;
  o.seed = seed_;

  std::vector<lg::TierKeys> keys = lg::DemoKeys();
  if (!keys_path_.empty()) {
    auto text = ReadFile(keys_path_);
    if (!text.ok()) return fail(text.status(), 2);
    auto parsed = lg::ParseKeysText(*text, keys_path_);
    if (!parsed.ok()) return fail(parsed.status(), 2);
    keys = std::move(parsed).value();
  }
  auto mix = lg::ParseWeightedList(mix_, /*weight_optional=*/false, "--mix");
  if (!mix.ok()) return fail(mix.status(), 2);
  auto tiers = lg::BuildTierMix(*mix, keys);
  if (!tiers.ok()) return fail(tiers.status(), 2);
  o.workload.tiers = std::move(tiers).value();
  std::string models;
  for (const std::string& m : models_) models += (models.empty() ? "" : ",") + m;
  auto model_list = lg::ParseWeightedList(models, /*weight_optional=*/true, "--model");
  if (!model_list.ok()) return fail(model_list.status(), 2);
  o.workload.models = std::move(model_list).value();
  auto bytes = lg::ParseByteRange(input_bytes_);
  if (!bytes.ok()) return fail(bytes.status(), 2);
  o.workload.input_bytes = *bytes;
  auto inputs = lg::ParseInputDistribution(input_dist_, input_pool_);
  if (!inputs.ok()) return fail(inputs.status(), 2);
  o.workload.inputs = *inputs;
  o.workload.max_tokens = max_tokens_;
  o.workload.async = async_;
  auto api = lg::ParseApi(api_);
  if (!api.ok()) return fail(api.status(), 2);
  o.workload.api = *api;

  const bool live = isatty(STDERR_FILENO) == 1;
  const size_t steps = o.steps.size();
  lg::ProgressFn progress;
  if (live) progress = [steps](const lg::ProgressSample& s) { PrintProgress(s, steps); };
  auto result = lg::RunBench(o, progress);
  if (live) std::fprintf(stderr, "\r\033[K");
  if (!result.ok()) {
    return fail(result.status(), result.status().code() == ErrorCode::kInvalidArgument ? 2 : 1);
  }
  const std::string report = json_ ? lg::FormatReportJson(*result) : lg::FormatReportTable(*result);
  std::fwrite(report.data(), 1, report.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace sluice
