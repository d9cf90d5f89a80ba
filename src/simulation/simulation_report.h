// SimulationReport: what one simulation run observed, per tier and per
// hostile client, with per-second series for recovery analysis — and its
// two renderings, a table for people and JSON for scripts.
//
// Counting rules. Every request is counted by its ARRIVAL time: the totals
// cover arrivals after the warm-up, the per-second series cover every
// arrival (second 0 = the first second of the run). Each request lands in
// exactly one outcome: ok (200), refused (503 from admission or from the
// queue, 400 for an invalid deadline), timed_out (504), failed (502) or
// other. Latencies are those of the 200s, from arrival to answer, in
// virtual milliseconds.
//
// JSON schema "sluice-simulate/1" (ReportJson): {"schema", "model",
// "devices", "duration_s", "warmup_s", "rate_rps", "arrivals", "mix",
// "seed", "goodput_rps", "utilization", "mean_batch_size", "batches",
// "failed_batches", "retried_requests", "dead_letters", "breaker_opens",
// "answered_twice", "unanswered", "events", "device_full_batch_rps",
// "tiers": [STREAM], "hostile": [STREAM], "all": STREAM, and with series
// "utilization_per_second": [..]}; STREAM = {"name", "tier", "offered",
// "ok", "refused": {REASON: n}, "refused_total", "refused_after_queueing",
// "timed_out", "failed", "other", "success_ratio", "latency_ms": {"p50",
// "p95", "p99", "max", "mean"}, and with series "per_second": [{"offered",
// "ok", "refused", "timed_out", "failed", "other"}]}.
//
// Value types and pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

// Outcomes of the requests that arrived in one second.
struct SecondCounts {
  uint32_t offered = 0;
  uint32_t ok = 0;
  uint32_t refused = 0;
  uint32_t timed_out = 0;
  uint32_t failed = 0;
  uint32_t other = 0;

  SecondCounts& operator+=(const SecondCounts& o);
  // ok / offered; 1 when nothing was offered.
  double success_ratio() const { return offered == 0 ? 1.0 : double(ok) / offered; }
};

// One request stream: a tier of the regular clients, a hostile client, or
// everything together.
struct StreamReport {
  std::string name;  // tier name, "hostile-1", ... or "all"
  std::string tier;  // the tier its requests are sent as
  uint64_t offered = 0;
  uint64_t ok = 0;                          // 200
  std::map<std::string, uint64_t> refused;  // by reason: queue_full, deadline_unreachable, ...
  uint64_t refused_total = 0;
  uint64_t refused_after_queueing = 0;  // of refused_total: queued first, then answered 503
  uint64_t timed_out = 0;               // 504
  uint64_t failed = 0;                  // 502
  uint64_t other = 0;                   // any other answer (a bug in a simulation)
  double success_ratio = 1;             // ok / offered (1 when nothing was offered)
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;  // of the 200s
  std::vector<SecondCounts> per_second;                                // index = arrival second
};

struct SimulationReport {
  std::string model;
  int devices = 0;
  double duration_s = 0;
  double warmup_s = 0;
  double rate_rps = 0;  // regular clients' offered load
  std::string arrivals;
  std::string mix;
  uint64_t seed = 0;
  std::vector<StreamReport> tiers;    // regular clients, in the mix's order
  std::vector<StreamReport> hostile;  // one per hostile client
  StreamReport all;                   // tiers and hostile clients together
  double goodput_rps = 0;             // 200s per second after the warm-up (all streams)
  // Busy device time / (devices x time) after the warm-up: every batch,
  // including failed ones, from the dispatch observer.
  double utilization = 0;
  std::vector<double> utilization_per_second;
  double mean_batch_size = 0;  // over successful batches
  uint64_t batches = 0;        // batches that finished (ok or failed), whole run
  uint64_t failed_batches = 0;
  uint64_t retried_requests = 0;
  uint64_t dead_letters = 0;
  uint64_t breaker_opens = 0;
  uint64_t answered_twice = 0;       // requests answered more than once: a bug
  uint64_t unanswered = 0;           // requests never answered by the end of the drain: a bug
  uint64_t events = 0;               // executor callbacks run
  double device_full_batch_rps = 0;  // one device's throughput on full batches (cost prior)
};

// The first second s >= from_second at which the combined series of
// `streams` has success_ratio >= min_ratio (seconds with nothing offered
// count as met), or nullopt. For recovery times after a fault.
std::optional<int> FirstSecondMeeting(const std::vector<const StreamReport*>& streams,
                                      int from_second, double min_ratio);
// The per-second sums of `streams` over [from_second, to_second).
SecondCounts SumSeconds(const std::vector<const StreamReport*>& streams, int from_second,
                        int to_second);

// A fixed-width table: one row per tier and hostile client, then the totals.
std::string FormatReportTable(const SimulationReport& report);
// The JSON document above; `series` adds the per-second series.
std::string ReportJson(const SimulationReport& report, bool series);

}  // namespace sluice
