// The report of a `sluice bench` run: a table for people and JSON for
// scripts. Pure functions of a BenchResult; thread-safe.
//
// JSON (`--json`), schema "sluice-bench/1". Field names are stable; new
// fields may be added. Latencies are milliseconds, rates requests/second,
// durations seconds. A latency object is {"count", "p50", "p90", "p95",
// "p99", "p999", "max", "mean"} (values null when count is 0), taken from a
// log-bucket histogram whose quantiles are within 0.4 % of a recorded value.
//
//   {
//     "schema": "sluice-bench/1",
//     "config": {"url", "rates": [..], "step_duration_s": [..], "warmup_s",
//                "arrivals": "constant"|"poisson", "connections", "threads",
//                "seed", "drain_timeout_s", "input_bytes": {"min", "max"},
//                "max_tokens", "tiers": [{"name", "weight", "keys" (a count)}],
//                "models": [{"name", "weight"}]},
//     "overall":  SECTION,              // all steps together
//     "steps": [SECTION + {"target_rate", "duration_s", "gateway": [MODEL]}],
//     "gateway_overhead_ms": LATENCY,   // Server-Timing gateway;dur of 200s
//     "gateway": [MODEL] | null,        // /metrics, end of warm-up → end of last step
//     "generator": {"fell_behind", "late", "late_threshold_ms",
//                   "schedule_lag_ms": LATENCY, "connection_waits",
//                   "connection_wait_ms": LATENCY, "max_waiting",
//                   "connections_open", "connect_failures", "reconnects",
//                   "stale_retries", "max_thread_busy" (CPU / wall, busiest
//                   load thread)},
//     "warnings": ["..."]
//   }
//   SECTION = {"duration_s", "all": TIER, "tiers": {"free": TIER, ...}}
//   TIER    = {"offered_rps", "achieved_rps", "scheduled", "ok", "status_429",
//              "status_503", "status_504", "other", "other_status",
//              "transport_errors", "timeouts", "success_ratio",
//              "latency_ms": LATENCY}
//     offered_rps = scheduled / duration; achieved_rps = ok / duration;
//     latency is from the scheduled send time, for 200 responses only;
//     other = other_status + transport_errors + timeouts.
//   MODEL   = {"model", "batches", "batched_requests", "mean_batch_size",
//              "batch_size_buckets": [{"le", "batches"}] (le null for +Inf),
//              "utilization_before", "utilization_after"}
#pragma once

#include <string>

#include "loadgen/bench_runner.h"

namespace sluice::loadgen {

// Multi-line, fixed-width text for a terminal.
std::string FormatReportTable(const BenchResult& result);

// One JSON document (see above), with a trailing newline.
std::string FormatReportJson(const BenchResult& result);

}  // namespace sluice::loadgen
