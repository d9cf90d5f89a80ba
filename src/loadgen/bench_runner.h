// RunBench(): one complete `sluice bench` run against a gateway.
//
//   1. Checks the target: resolves it, sends one request per tier (with the
//      tier's first key) and per model, and stops with a clear error if the
//      gateway is unreachable (Unavailable), rejects a key (401) or does not
//      know a model (404) — before any load is offered.
//   2. Opens the connections (split across `threads` load threads, each a
//      LoadWorker), then starts every thread's schedule at the same instant.
//   3. While the load runs, the calling thread scrapes /metrics at the end of
//      the warm-up and at the end of each step, and reports progress once a
//      second through `on_progress`.
//   4. After the last step, waits for outstanding answers for at most
//      `drain_timeout_us` (then they count as timeouts), merges the threads'
//      statistics and returns them.
// A run therefore never takes longer than about connect + warm-up + steps +
// drain (+ a scrape timeout per scrape).
//
// Blocking; thread-safe (no shared state between calls). `on_progress` runs
// on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "loadgen/metrics_scrape.h"
#include "loadgen/run_stats.h"
#include "loadgen/schedule.h"
#include "loadgen/workload.h"

namespace sluice::loadgen {

struct BenchOptions {
  std::string url = "http://127.0.0.1:8080";     // gateway base URL (http only)
  std::vector<RateStep> steps;                   // measured steps (one unless ramping)
  int64_t warmup_us = 2'000'000;                 // at steps[0]'s rate, not measured
  bool poisson = false;                          // Poisson arrivals instead of constant
  size_t connections = 256;                      // in total, split across threads
  int threads = 1;                               // load threads, 1..16
  WorkloadSpec workload;                         // tiers + keys, models, sizes
  std::string service_token = "svc-demo-token";  // for /metrics; "" = no scrape
  int64_t drain_timeout_us = 5'000'000;          // after the last step; then timeouts
  int64_t connect_timeout_us = 3'000'000;        // preflight and connection opening
  int64_t scrape_timeout_us = 2'000'000;         // per /metrics scrape
  int64_t late_threshold_us = 1000;              // generator lag counted as late
  uint64_t seed = 1;                             // arrivals and request draws
};

// Once a second while the load runs (warm-up and drain included).
struct ProgressSample {
  double elapsed_s = 0;        // since the start of the warm-up
  int step = -1;               // -1 warm-up; steps.size() = draining
  double target_rate = 0;      // requests/s the schedule offers now
  double offered_per_s = 0;    // arrivals handled in the last interval, per second
  double completed_per_s = 0;  // responses (any status) in the last interval, per second
  uint64_t errors = 0;         // non-200, transport errors and timeouts, so far
  double p95_ms = 0;           // of the 200s in the last interval; 0 without any
  uint64_t waiting = 0;        // requests waiting for a free connection now
  uint64_t late = 0;           // arrivals the generator handled late, so far
};

struct StepReport {
  RateStep step;
  std::vector<SliceStats> tiers;           // per WorkloadSpec tier
  SliceStats overall;                      // all tiers
  std::vector<ModelGatewayDelta> gateway;  // from the scrapes around the step
};

struct BenchResult {
  BenchOptions options;  // what ran (normalised)
  std::vector<StepReport> steps;
  std::vector<SliceStats> tiers;         // each tier over all steps
  SliceStats overall;                    // everything measured
  int64_t measured_us = 0;               // sum of the step durations
  LatencyHistogram gateway_overhead_ns;  // Server-Timing gateway;dur of the 200s
  LatencyHistogram first_byte_ns;        // the 200s' time to their header (openai-chat)
  GeneratorStats generator;
  // More than 1 % (and at least 10) of the requests were sent late by the
  // generator itself: the load was not what was asked for.
  bool generator_fell_behind = false;
  bool gateway_scraped = false;            // the two outer scrapes succeeded
  std::vector<ModelGatewayDelta> gateway;  // end of warm-up → end of last step
  size_t connections_open = 0;             // at the start
  std::vector<std::string> warnings;       // things the reader should know
};

using ProgressFn = std::function<void(const ProgressSample&)>;

// Errors: InvalidArgument for bad options, Unavailable for an unreachable
// target or a failed preflight. Server errors during the run are results,
// not errors.
Result<BenchResult> RunBench(const BenchOptions& options, const ProgressFn& on_progress);

}  // namespace sluice::loadgen
