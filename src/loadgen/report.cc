#include "loadgen/report.h"

#include <cmath>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace sluice::loadgen {

namespace json = boost::json;

namespace {

struct Quantile {
  const char* json_name;
  const char* column;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", "p50", 0.50},     {"p90", "p90", 0.90},
                                   {"p95", "p95", 0.95},     {"p99", "p99", 0.99},
                                   {"p999", "p99.9", 0.999}, {"max", "max", 1.0}};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
// JSON milliseconds, to 0.1 us: finer digits are below the histogram's resolution.
double RoundedMs(double ns) { return std::round(ns / 100) / 1e4; }

// ---- JSON ----

json::value LatencyJson(const LatencyHistogram& h) {
  json::object o;
  o["count"] = h.count();
  for (const Quantile& q : kQuantiles) {
    o[q.json_name] = h.empty()
                         ? json::value(nullptr)
                         : json::value(RoundedMs(static_cast<double>(h.ValueAtQuantile(q.q))));
  }
  o["mean"] = h.empty() ? json::value(nullptr) : json::value(RoundedMs(h.mean()));
  return o;
}

json::value TierJson(const SliceStats& s, double duration_s) {
  const OutcomeCounts& c = s.counts;
  json::object o;
  o["offered_rps"] = c.scheduled / duration_s;
  o["achieved_rps"] = c.ok / duration_s;
  o["scheduled"] = c.scheduled;
  o["ok"] = c.ok;
  o["status_429"] = c.status_429;
  o["status_503"] = c.status_503;
  o["status_504"] = c.status_504;
  o["other"] = c.other();
  o["other_status"] = c.other_status;
  o["transport_errors"] = c.transport_errors;
  o["timeouts"] = c.timeouts;
  o["success_ratio"] = c.scheduled == 0 ? json::value(nullptr)
                                        : json::value(static_cast<double>(c.ok) / c.scheduled);
  o["latency_ms"] = LatencyJson(s.latency_ns);
  return o;
}

json::object SectionJson(const BenchResult& r, const std::vector<SliceStats>& tiers,
                         const SliceStats& all, double duration_s) {
  json::object o;
  o["duration_s"] = duration_s;
  o["all"] = TierJson(all, duration_s);
  json::object by_tier;
  for (size_t t = 0; t < tiers.size(); ++t) {
    by_tier[r.options.workload.tiers[t].tier] = TierJson(tiers[t], duration_s);
  }
  o["tiers"] = std::move(by_tier);
  return o;
}

json::value OptionalJson(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::array GatewayJson(const std::vector<ModelGatewayDelta>& models) {
  json::array out;
  for (const ModelGatewayDelta& m : models) {
    json::object o;
    o["model"] = m.model;
    o["batches"] = m.batches;
    o["batched_requests"] = m.batched_requests;
    o["mean_batch_size"] = m.mean_batch_size;
    json::array buckets;
    for (const BatchSizeBucket& b : m.batch_sizes) {
      buckets.push_back(
          json::object{{"le", std::isinf(b.le) ? json::value(nullptr) : json::value(b.le)},
                       {"batches", b.batches}});
    }
    o["batch_size_buckets"] = std::move(buckets);
    o["utilization_before"] = OptionalJson(m.utilization_before);
    o["utilization_after"] = OptionalJson(m.utilization_after);
    out.push_back(std::move(o));
  }
  return out;
}

json::object ConfigJson(const BenchOptions& o) {
  json::object c;
  c["url"] = o.url;
  json::array rates, durations;
  for (const RateStep& s : o.steps) {
    rates.push_back(s.rate_per_s);
    durations.push_back(s.duration_us / 1e6);
  }
  c["rates"] = std::move(rates);
  c["step_duration_s"] = std::move(durations);
  c["warmup_s"] = o.warmup_us / 1e6;
  c["arrivals"] = o.poisson ? "poisson" : "constant";
  c["connections"] = o.connections;
  c["threads"] = o.threads;
  c["seed"] = o.seed;
  c["drain_timeout_s"] = o.drain_timeout_us / 1e6;
  c["input_bytes"] = json::object{{"min", o.workload.input_bytes.min_bytes},
                                  {"max", o.workload.input_bytes.max_bytes}};
  c["max_tokens"] = o.workload.max_tokens;
  json::array tiers, models;
  for (const TierMix& t : o.workload.tiers) {
    tiers.push_back(json::object{{"name", t.tier}, {"weight", t.weight}, {"keys", t.keys.size()}});
  }
  for (const WeightedName& m : o.workload.models) {
    models.push_back(json::object{{"name", m.name}, {"weight", m.weight}});
  }
  c["tiers"] = std::move(tiers);
  c["models"] = std::move(models);
  return c;
}

// ---- table ----

std::string TierRow(std::string_view name, const SliceStats& s, double duration_s) {
  const OutcomeCounts& c = s.counts;
  std::string row = fmt::format("  {:<11}{:>10.1f}{:>11.1f}{:>9}{:>7}{:>7}{:>7}{:>7}", name,
                                c.scheduled / duration_s, c.ok / duration_s, c.ok, c.status_429,
                                c.status_503, c.status_504, c.other());
  for (const Quantile& q : kQuantiles) {
    row += s.latency_ns.empty() ? fmt::format("{:>9}", "-")
                                : fmt::format("{:>9.3f}", Ms(s.latency_ns.ValueAtQuantile(q.q)));
  }
  return row + "\n";
}

std::string TierTable(const BenchResult& r, const std::vector<SliceStats>& tiers,
                      const SliceStats& all, double duration_s) {
  std::string out = fmt::format("  {:<11}{:>10}{:>11}{:>9}{:>7}{:>7}{:>7}{:>7}", "tier",
                                "offered/s", "achieved/s", "ok", "429", "503", "504", "other");
  for (const Quantile& q : kQuantiles) out += fmt::format("{:>9}", q.column);
  out += "   (latency ms, 200s)\n";
  for (size_t t = 0; t < tiers.size(); ++t) {
    out += TierRow(r.options.workload.tiers[t].tier, tiers[t], duration_s);
  }
  if (tiers.size() > 1) out += TierRow("all", all, duration_s);
  return out;
}

std::string GatewayText(const std::vector<ModelGatewayDelta>& models, std::string_view indent) {
  std::string out;
  for (const ModelGatewayDelta& m : models) {
    out += fmt::format("{}{}: {:.0f} batches, mean batch size {:.2f}", indent, m.model, m.batches,
                       m.mean_batch_size);
    if (m.utilization_after) {
      out +=
          fmt::format(", accelerator utilisation {:.1f} % (before: {})", *m.utilization_after * 100,
                      m.utilization_before ? fmt::format("{:.1f} %", *m.utilization_before * 100)
                                           : std::string("n/a"));
    }
    out += "\n";
    if (m.batches <= 0) continue;
    out += fmt::format("{}  batch sizes:", indent);
    double prev = 0;
    for (const BatchSizeBucket& b : m.batch_sizes) {
      if (b.batches > 0) {
        // Bucket (prev, le] holds the integer sizes prev+1 .. le.
        const std::string range = std::isinf(b.le)   ? fmt::format(">{:g}", prev)
                                  : b.le == prev + 1 ? fmt::format("{:g}", b.le)
                                                     : fmt::format("{:g}-{:g}", prev + 1, b.le);
        out += fmt::format(" {}: {:.1f} %", range, 100 * b.batches / m.batches);
      }
      prev = b.le;
    }
    out += "\n";
  }
  return out;
}

std::string LatencyLine(const LatencyHistogram& h) {
  if (h.empty()) return "-";
  return fmt::format("p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms", Ms(h.ValueAtQuantile(0.5)),
                     Ms(h.ValueAtQuantile(0.99)), Ms(h.max()));
}

}  // namespace

std::string FormatReportJson(const BenchResult& r) {
  json::object doc;
  doc["schema"] = "sluice-bench/1";
  doc["config"] = ConfigJson(r.options);
  doc["overall"] = SectionJson(r, r.tiers, r.overall, r.measured_us / 1e6);
  json::array steps;
  for (const StepReport& s : r.steps) {
    json::object o = SectionJson(r, s.tiers, s.overall, s.step.duration_us / 1e6);
    o["target_rate"] = s.step.rate_per_s;
    o["gateway"] = GatewayJson(s.gateway);
    steps.push_back(std::move(o));
  }
  doc["steps"] = std::move(steps);
  doc["gateway_overhead_ms"] = LatencyJson(r.gateway_overhead_ns);
  if (r.first_byte_ns.count() > 0) doc["first_byte_ms"] = LatencyJson(r.first_byte_ns);
  doc["gateway"] = r.gateway_scraped ? json::value(GatewayJson(r.gateway)) : json::value(nullptr);
  const GeneratorStats& g = r.generator;
  doc["generator"] = json::object{{"fell_behind", r.generator_fell_behind},
                                  {"late", g.late},
                                  {"late_threshold_ms", r.options.late_threshold_us / 1e3},
                                  {"schedule_lag_ms", LatencyJson(g.schedule_lag_ns)},
                                  {"connection_waits", g.connection_waits},
                                  {"connection_wait_ms", LatencyJson(g.connection_wait_ns)},
                                  {"max_waiting", g.max_waiting},
                                  {"connections_open", r.connections_open},
                                  {"connect_failures", g.connect_failures},
                                  {"reconnects", g.reconnects},
                                  {"stale_retries", g.stale_retries},
                                  {"max_thread_busy", g.max_thread_busy}};
  json::array warnings;
  for (const std::string& w : r.warnings) warnings.push_back(json::string(w));
  doc["warnings"] = std::move(warnings);
  return json::serialize(doc) + "\n";
}

std::string FormatReportTable(const BenchResult& r) {
  const BenchOptions& o = r.options;
  std::string out =
      fmt::format("sluice bench: {} — {} arrivals, {} connections, {} thread{}, warm-up {:g} s\n",
                  o.url, o.poisson ? "Poisson" : "constant-rate", r.connections_open, o.threads,
                  o.threads == 1 ? "" : "s", o.warmup_us / 1e6);
  if (r.steps.size() > 1) {
    for (size_t i = 0; i < r.steps.size(); ++i) {
      const StepReport& s = r.steps[i];
      out += fmt::format("\nstep {} of {}: {:g} req/s for {:g} s\n", i + 1, r.steps.size(),
                         s.step.rate_per_s, s.step.duration_us / 1e6);
      out += TierTable(r, s.tiers, s.overall, s.step.duration_us / 1e6);
      if (!s.gateway.empty())
        out += "  gateway during the step:\n" + GatewayText(s.gateway, "    ");
    }
    out += fmt::format("\nall steps ({:g} s):\n", r.measured_us / 1e6);
  } else {
    out +=
        fmt::format("\n{:g} req/s for {:g} s:\n", r.steps[0].step.rate_per_s, r.measured_us / 1e6);
  }
  out += TierTable(r, r.tiers, r.overall, r.measured_us / 1e6);

  out += "\ngateway overhead (Server-Timing gateway;dur, 200s): " +
         LatencyLine(r.gateway_overhead_ns) + "\n";
  if (r.first_byte_ns.count() > 0) {
    out += "time to the response header (streamed: the first token), 200s: " +
           LatencyLine(r.first_byte_ns) + "\n";
  }
  if (r.gateway_scraped) {
    out += "gateway batching (/metrics, end of warm-up to end of run):\n";
    out += GatewayText(r.gateway, "  ");
  }
  const GeneratorStats& g = r.generator;
  out += fmt::format(
      "generator: {} (busiest load thread used {:.0f} % of a core)\n"
      "  schedule lag {}; {} late (> {:g} ms)\n"
      "  {} waited for a free connection ({}); {} connect failures, {} reconnects\n",
      r.generator_fell_behind ? "FELL BEHIND its schedule" : "kept to its schedule",
      g.max_thread_busy * 100, LatencyLine(g.schedule_lag_ns), g.late, o.late_threshold_us / 1e3,
      g.connection_waits, g.connection_waits ? LatencyLine(g.connection_wait_ns) : std::string("-"),
      g.connect_failures, g.reconnects);
  for (const std::string& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace sluice::loadgen
