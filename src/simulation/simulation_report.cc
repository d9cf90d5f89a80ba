#include "simulation/simulation_report.h"

#include <fmt/format.h>
#include <boost/json.hpp>

namespace sluice {

namespace json = boost::json;

SecondCounts& SecondCounts::operator+=(const SecondCounts& o) {
  offered += o.offered;
  ok += o.ok;
  refused += o.refused;
  timed_out += o.timed_out;
  failed += o.failed;
  other += o.other;
  return *this;
}

SecondCounts SumSeconds(const std::vector<const StreamReport*>& streams, int from_second,
                        int to_second) {
  SecondCounts sum;
  for (const StreamReport* s : streams) {
    for (int i = std::max(0, from_second);
         i < to_second && i < static_cast<int>(s->per_second.size()); ++i) {
      sum += s->per_second[i];
    }
  }
  return sum;
}

std::optional<int> FirstSecondMeeting(const std::vector<const StreamReport*>& streams,
                                      int from_second, double min_ratio) {
  size_t seconds = 0;
  for (const StreamReport* s : streams) seconds = std::max(seconds, s->per_second.size());
  for (int i = std::max(0, from_second); i < static_cast<int>(seconds); ++i) {
    if (SumSeconds(streams, i, i + 1).success_ratio() >= min_ratio) return i;
  }
  return std::nullopt;
}

namespace {

std::string Row(const StreamReport& s) {
  return fmt::format(
      "{:<12} {:>9} {:>9} {:>8.3f}% {:>8} {:>7} {:>7} {:>6} {:>8.1f} {:>8.1f} {:>8.1f}\n", s.name,
      s.offered, s.ok, 100 * s.success_ratio, s.refused_total, s.timed_out, s.failed, s.other,
      s.p50_ms, s.p95_ms, s.p99_ms);
}

std::string Reasons(const StreamReport& s) {
  std::string out;
  for (const auto& [reason, n] : s.refused) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", reason, n);
  }
  if (s.refused_after_queueing > 0) {
    out += fmt::format(" ({} of them after queueing)", s.refused_after_queueing);
  }
  return out;
}

json::object StreamJson(const StreamReport& s, bool series) {
  json::object o;
  o["name"] = s.name;
  o["tier"] = s.tier;
  o["offered"] = s.offered;
  o["ok"] = s.ok;
  json::object refused;
  for (const auto& [reason, n] : s.refused) refused[reason] = n;
  o["refused"] = std::move(refused);
  o["refused_total"] = s.refused_total;
  o["refused_after_queueing"] = s.refused_after_queueing;
  o["timed_out"] = s.timed_out;
  o["failed"] = s.failed;
  o["other"] = s.other;
  o["success_ratio"] = s.success_ratio;
  o["latency_ms"] = {{"p50", s.p50_ms},
                     {"p95", s.p95_ms},
                     {"p99", s.p99_ms},
                     {"max", s.max_ms},
                     {"mean", s.mean_ms}};
  if (series) {
    json::array per_second;
    for (const SecondCounts& c : s.per_second) {
      per_second.push_back({{"offered", c.offered},
                            {"ok", c.ok},
                            {"refused", c.refused},
                            {"timed_out", c.timed_out},
                            {"failed", c.failed},
                            {"other", c.other}});
    }
    o["per_second"] = std::move(per_second);
  }
  return o;
}

}  // namespace

std::string FormatReportTable(const SimulationReport& r) {
  std::string out = fmt::format(
      "model {}: {} devices ({:.0f} req/s each on full batches), {:g} s of {} arrivals at "
      "{:g} req/s ({}), seed {}{}\n\n",
      r.model, r.devices, r.device_full_batch_rps, r.duration_s, r.arrivals, r.rate_rps, r.mix,
      r.seed, r.warmup_s > 0 ? fmt::format(", first {:g} s not counted", r.warmup_s) : "");
  out += fmt::format("{:<12} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8}\n",
                     "stream", "offered", "ok(200)", "success", "refused", "504", "502", "other",
                     "p50 ms", "p95 ms", "p99 ms");
  for (const StreamReport& s : r.tiers) out += Row(s);
  for (const StreamReport& s : r.hostile) out += Row(s);
  out += Row(r.all);
  std::string reasons;
  for (const auto* list : {&r.tiers, &r.hostile}) {
    for (const StreamReport& s : *list) {
      if (s.refused_total > 0) reasons += fmt::format("  {}: {}\n", s.name, Reasons(s));
    }
  }
  if (!reasons.empty()) out += "\nrefused (503/400) by reason:\n" + reasons;
  out += fmt::format(
      "\ngoodput {:.1f} req/s, device utilization {:.1f}%, {} batches ({} failed), mean batch "
      "size {:.1f}\n",
      r.goodput_rps, 100 * r.utilization, r.batches, r.failed_batches, r.mean_batch_size);
  out += fmt::format("retried requests {}, dead letters {}, breaker openings {}\n",
                     r.retried_requests, r.dead_letters, r.breaker_opens);
  out += fmt::format("answered twice {}, unanswered {}{}\n", r.answered_twice, r.unanswered,
                     r.answered_twice + r.unanswered > 0 ? "  <-- BUG" : "");
  return out;
}

std::string ReportJson(const SimulationReport& r, bool series) {
  json::object o;
  o["schema"] = "sluice-simulate/1";
  o["model"] = r.model;
  o["devices"] = r.devices;
  o["duration_s"] = r.duration_s;
  o["warmup_s"] = r.warmup_s;
  o["rate_rps"] = r.rate_rps;
  o["arrivals"] = r.arrivals;
  o["mix"] = r.mix;
  o["seed"] = r.seed;
  o["goodput_rps"] = r.goodput_rps;
  o["utilization"] = r.utilization;
  o["mean_batch_size"] = r.mean_batch_size;
  o["batches"] = r.batches;
  o["failed_batches"] = r.failed_batches;
  o["retried_requests"] = r.retried_requests;
  o["dead_letters"] = r.dead_letters;
  o["breaker_opens"] = r.breaker_opens;
  o["answered_twice"] = r.answered_twice;
  o["unanswered"] = r.unanswered;
  o["events"] = r.events;
  o["device_full_batch_rps"] = r.device_full_batch_rps;
  json::array tiers, hostile;
  for (const StreamReport& s : r.tiers) tiers.push_back(StreamJson(s, series));
  for (const StreamReport& s : r.hostile) hostile.push_back(StreamJson(s, series));
  o["tiers"] = std::move(tiers);
  o["hostile"] = std::move(hostile);
  o["all"] = StreamJson(r.all, series);
  if (series) {
    json::array u;
    for (double v : r.utilization_per_second) u.push_back(v);
    o["utilization_per_second"] = std::move(u);
  }
  return json::serialize(o) + "\n";
}

}  // namespace sluice
