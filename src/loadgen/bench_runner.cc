#include "loadgen/bench_runner.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "common/http_fetch.h"
#include "loadgen/load_worker.h"
#include "loadgen/request_factory.h"

namespace sluice::loadgen {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

namespace {

constexpr int kMaxThreads = 16;
constexpr size_t kMaxConnections = 100'000;
constexpr int64_t kPreflightTimeoutMs = 10'000;  // longer than any gateway deadline

Status ValidateOptions(const BenchOptions& o) {
  if (o.steps.empty()) return InvalidArgument("no rate given (--rate or --ramp)");
  for (const RateStep& s : o.steps) {
    if (!(s.rate_per_s > 0)) return InvalidArgument("--rate: must be positive");
    if (s.duration_us < 100'000) return InvalidArgument("--duration: must be at least 100ms");
  }
  if (o.warmup_us < 0) return InvalidArgument("--warmup: must not be negative");
  if (o.threads < 1 || o.threads > kMaxThreads) {
    return InvalidArgument("--threads: must be between 1 and " + std::to_string(kMaxThreads));
  }
  if (o.connections < static_cast<size_t>(o.threads) || o.connections > kMaxConnections) {
    return InvalidArgument("--connections: must be between --threads and " +
                           std::to_string(kMaxConnections));
  }
  if (o.drain_timeout_us < 0) return InvalidArgument("--drain-timeout: must not be negative");
  if (o.connect_timeout_us <= 0 || o.scrape_timeout_us <= 0) {
    return InvalidArgument("timeouts must be positive");
  }
  return ValidateWorkload(o.workload);
}

// Each connection is a file descriptor; lift the soft limit toward the hard one.
void RaiseFileLimit(size_t connections, std::vector<std::string>* warnings) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t needed = static_cast<rlim_t>(connections) + 64;
  if (lim.rlim_cur >= needed) return;
  lim.rlim_cur = std::min(needed, lim.rlim_max);
  setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < needed) {
    warnings->push_back("the open-file limit (" + std::to_string(lim.rlim_cur) +
                        ") is below --connections + 64; some connections will fail (raise "
                        "`ulimit -n`)");
  }
}

// One real request per tier (its first key) and per model, so that a wrong
// URL, key or model name stops the run before any load is offered.
Status Preflight(const tcp::endpoint& endpoint, const HttpTarget& target, const BenchOptions& o) {
  const WorkloadSpec& w = o.workload;
  RequestFactory::Options fo;
  fo.stream_id = 0xffff;  // ids no load request uses
  RequestFactory factory(w, fo);
  std::vector<PlannedRequest> checks;
  for (uint32_t t = 0; t < w.tiers.size(); ++t) checks.push_back({t, 0, 0, 0, 0, std::nullopt});
  for (uint32_t m = 1; m < w.models.size(); ++m) checks.push_back({0, m, 0, 0, 0, std::nullopt});
  uint64_t seq = 0;
  for (PlannedRequest& p : checks) {
    p.input_bytes = w.input_bytes.min_bytes;
    p.seq = seq++;
    FetchRequest req;
    req.method = "POST";
    req.path = ApiPath(w.api);  // HttpFetch() adds the base path
    req.headers = {{"Authorization", "Bearer " + w.tiers[p.tier].keys[0]}};
    factory.RenderBody(p, &req.body);
    req.connect_timeout_ms = o.connect_timeout_us / 1000;
    req.timeout_ms = kPreflightTimeoutMs;
    auto res = HttpFetch(endpoint, target, req);
    if (!res.ok()) {
      return Unavailable(res.status().message() + " (is the gateway running at " + o.url + "?)");
    }
    const std::string what =
        "tier `" + w.tiers[p.tier].tier + "`, model `" + w.models[p.model].name + "`";
    const std::string body = res->body.substr(0, 300);
    switch (res->status) {
      case 401:
        return Unavailable("the gateway rejected the key of tier `" + w.tiers[p.tier].tier +
                           "` (401): check --keys. Response: " + body);
      case 404:
        return Unavailable("the gateway does not know model `" + w.models[p.model].name +
                           "` (404): check --model. Response: " + body);
      case 400:
      case 413:
        return Unavailable("the gateway refused a test request (" + what + ", " +
                           std::to_string(res->status) + "): " + body);
      default:
        break;
    }
  }
  return Status::Ok();
}

Result<GatewaySnapshot> Scrape(const tcp::endpoint& endpoint, const HttpTarget& target,
                               const BenchOptions& o) {
  FetchRequest req;
  req.path = "/metrics";
  req.headers = {{"Authorization", "Bearer " + o.service_token}};
  req.connect_timeout_ms = o.scrape_timeout_us / 1000;
  req.timeout_ms = o.scrape_timeout_us / 1000;
  auto res = HttpFetch(endpoint, target, req);
  if (!res.ok()) return res.status();
  if (res->status != 200) {
    return Unavailable("GET /metrics answered " + std::to_string(res->status) +
                       (res->status == 401 ? " (check --service-token)" : ""));
  }
  return ParseGatewayMetrics(res->body);
}

// Schedule options for load thread `i` of `n`: an n-th of the rate each,
// interleaved (constant) or independent (Poisson).
ScheduleOptions ThreadSchedule(const BenchOptions& o, int i) {
  ScheduleOptions s;
  s.steps = o.steps;
  for (RateStep& step : s.steps) step.rate_per_s /= o.threads;
  s.warmup_us = o.warmup_us;
  s.poisson = o.poisson;
  s.seed = o.seed * 1'000'003 + static_cast<uint64_t>(i);
  s.phase = static_cast<double>(i) / o.threads;
  return s;
}

}  // namespace

Result<BenchResult> RunBench(const BenchOptions& options, const ProgressFn& on_progress) {
  if (Status s = ValidateOptions(options); !s.ok()) return s;
  auto target = ParseHttpUrl(options.url);
  if (!target.ok()) return InvalidArgument("--url: " + target.status().message());
  auto endpoint = ResolveTarget(*target);
  if (!endpoint.ok()) return endpoint.status();

  BenchResult result;
  result.options = options;
  RaiseFileLimit(options.connections, &result.warnings);
  if (Status s = Preflight(*endpoint, *target, options); !s.ok()) return s;

  bool scrape = !options.service_token.empty();
  if (scrape) {
    if (auto probe = Scrape(*endpoint, *target, options); !probe.ok()) {
      result.warnings.push_back("no gateway metrics: " + probe.status().message());
      scrape = false;
    }
  }

  // Load threads, each with its share of connections and arrivals.
  std::vector<std::unique_ptr<LoadWorker>> workers;
  for (int i = 0; i < options.threads; ++i) {
    WorkerOptions wo;
    wo.endpoint = *endpoint;
    wo.connections = options.connections / options.threads +
                     (static_cast<size_t>(i) < options.connections % options.threads ? 1 : 0);
    wo.schedule = ThreadSchedule(options, i);
    wo.workload = &options.workload;
    wo.factory.host_header = target->host_header;
    wo.factory.path = target->base_path + ApiPath(options.workload.api);
    wo.factory.seed = options.seed * 7919 + static_cast<uint64_t>(i);
    wo.factory.stream_id = static_cast<uint32_t>(i);
    wo.late_threshold_us = options.late_threshold_us;
    wo.connect_timeout_us = options.connect_timeout_us;
    wo.drain_timeout_us = options.drain_timeout_us;
    auto w = LoadWorker::Create(wo);
    if (!w.ok()) return w.status();
    workers.push_back(std::move(w).value());
  }
  std::string connect_error;
  for (auto& w : workers) {
    auto open = w->OpenConnections();
    if (open.ok()) {
      result.connections_open += *open;
    } else {
      connect_error = open.status().message();
    }
  }
  if (result.connections_open == 0) {
    return Unavailable("cannot open any connection to " + target->host_header + ": " +
                       connect_error);
  }
  if (result.connections_open < options.connections) {
    result.warnings.push_back("only " + std::to_string(result.connections_open) + " of " +
                              std::to_string(options.connections) +
                              " connections opened at the start" +
                              (connect_error.empty() ? "" : ": " + connect_error));
  }

  // Step boundaries, shared by every thread's schedule.
  auto timeline = ArrivalSchedule::Create(ThreadSchedule(options, 0));
  if (!timeline.ok()) return timeline.status();
  const size_t n_steps = options.steps.size();
  std::vector<int64_t> boundary_ns;  // start of each step, then the end of the last
  for (size_t i = 0; i <= n_steps; ++i) boundary_ns.push_back(timeline->StepStartNs(i));

  const TimePoint t0 = SteadyClock::now() + std::chrono::milliseconds(20);
  for (auto& w : workers) w->Begin(t0);

  std::vector<std::optional<GatewaySnapshot>> snapshots(n_steps + 1);
  size_t next_scrape = scrape ? 0 : snapshots.size();
  TimePoint next_tick = t0 + std::chrono::seconds(1);
  TimePoint last_tick = t0;
  WorkerProgress last;
  const auto all_done = [&] {
    return std::all_of(workers.begin(), workers.end(), [](const auto& w) { return w->done(); });
  };
  while (next_scrape < snapshots.size() || !all_done()) {
    TimePoint wake = SteadyClock::now() + std::chrono::milliseconds(20);
    if (next_scrape < snapshots.size()) {
      wake = std::min(wake, t0 + nanoseconds(boundary_ns[next_scrape]));
    }
    if (on_progress) wake = std::min(wake, next_tick);
    std::this_thread::sleep_until(wake);
    const TimePoint now = SteadyClock::now();
    if (next_scrape < snapshots.size() && now >= t0 + nanoseconds(boundary_ns[next_scrape])) {
      auto snap = Scrape(*endpoint, *target, options);
      if (snap.ok()) {
        snapshots[next_scrape] = std::move(snap).value();
      } else {
        result.warnings.push_back("a /metrics scrape failed: " + snap.status().message());
      }
      ++next_scrape;
    }
    if (on_progress && now >= next_tick) {
      WorkerProgress p;
      for (auto& w : workers) p.Merge(w->TakeProgress());
      const double dt = std::chrono::duration<double>(now - last_tick).count();
      const int64_t elapsed_ns = std::chrono::duration_cast<nanoseconds>(now - t0).count();
      ProgressSample s;
      s.elapsed_s = elapsed_ns / 1e9;
      s.step = static_cast<int>(n_steps);
      for (size_t i = 0; i < n_steps; ++i) {
        if (elapsed_ns < boundary_ns[i + 1]) {
          s.step = elapsed_ns < boundary_ns[i] ? -1 : static_cast<int>(i);
          break;
        }
      }
      s.target_rate = s.step < 0                           ? options.steps[0].rate_per_s
                      : s.step < static_cast<int>(n_steps) ? options.steps[s.step].rate_per_s
                                                           : 0;
      s.offered_per_s = (p.scheduled - last.scheduled) / dt;
      s.completed_per_s = (p.answered - last.answered) / dt;
      s.errors = p.failed;
      s.p95_ms = p.interval_latency_ns.ValueAtQuantile(0.95) / 1e6;
      s.waiting = p.waiting;
      s.late = p.late;
      on_progress(s);
      last = p;
      last_tick = now;
      next_tick += std::chrono::seconds(1);
      if (next_tick < now) next_tick = now + std::chrono::seconds(1);
    }
  }

  RunStats total(n_steps, options.workload.tiers.size());
  for (auto& w : workers) {
    w->Wait();
    total.Merge(w->stats());
  }

  const size_t n_tiers = options.workload.tiers.size();
  result.tiers.resize(n_tiers);
  for (size_t i = 0; i < n_steps; ++i) {
    StepReport step;
    step.step = options.steps[i];
    for (size_t t = 0; t < n_tiers; ++t) {
      step.tiers.push_back(total.slice(i, t));
      step.overall.Merge(total.slice(i, t));
      result.tiers[t].Merge(total.slice(i, t));
    }
    if (snapshots[i] && snapshots[i + 1])
      step.gateway = DiffGateway(*snapshots[i], *snapshots[i + 1]);
    result.overall.Merge(step.overall);
    result.measured_us += step.step.duration_us;
    result.steps.push_back(std::move(step));
  }
  result.gateway_overhead_ns = std::move(total.gateway_overhead_ns);
  result.first_byte_ns = std::move(total.first_byte_ns);
  result.generator = std::move(total.generator);
  if (snapshots.front() && snapshots.back()) {
    result.gateway_scraped = true;
    result.gateway = DiffGateway(*snapshots.front(), *snapshots.back());
  }

  const uint64_t scheduled = result.overall.counts.scheduled;
  // A few late sends are the OS preempting the thread; more than 1 % (and
  // at least 10) means the generator could not keep up.
  result.generator_fell_behind =
      result.generator.late >= 10 && result.generator.late * 100 > scheduled;
  if (result.generator_fell_behind) {
    const double busy = result.generator.max_thread_busy;
    const std::string why =
        busy >= 0.85
            ? std::string("the load thread was at its CPU limit; use --threads 2 or a lower rate")
            : fmt::format(
                  "the load thread used only {:.0f} % of a core, so the machine was busy "
                  "and did not run it on time",
                  busy * 100);
    result.warnings.push_back(fmt::format(
        "the generator sent {} requests more than {:g} ms after their scheduled time: {}. The lag "
        "is inside the latency figures",
        result.generator.late, options.late_threshold_us / 1e3, why));
  }
  if (scheduled > 0 && result.generator.connection_waits * 100 > scheduled) {
    result.warnings.push_back(std::to_string(result.generator.connection_waits) +
                              " requests found every connection busy and waited for one "
                              "(counted in their latency); raise --connections");
  }
  return result;
}

}  // namespace sluice::loadgen
