#include "loadgen/run_stats.h"

#include <algorithm>

namespace sluice::loadgen {

void OutcomeCounts::Merge(const OutcomeCounts& o) {
  scheduled += o.scheduled;
  ok += o.ok;
  status_429 += o.status_429;
  status_503 += o.status_503;
  status_504 += o.status_504;
  other_status += o.other_status;
  transport_errors += o.transport_errors;
  timeouts += o.timeouts;
}

void SliceStats::Merge(const SliceStats& o) {
  counts.Merge(o.counts);
  latency_ns.Merge(o.latency_ns);
}

void GeneratorStats::Merge(const GeneratorStats& o) {
  schedule_lag_ns.Merge(o.schedule_lag_ns);
  late += o.late;
  connection_waits += o.connection_waits;
  connection_wait_ns.Merge(o.connection_wait_ns);
  max_waiting = std::max(max_waiting, o.max_waiting);
  connect_failures += o.connect_failures;
  reconnects += o.reconnects;
  stale_retries += o.stale_retries;
  max_thread_busy = std::max(max_thread_busy, o.max_thread_busy);
}

RunStats::RunStats(size_t steps, size_t tiers)
    : step_count(steps), tier_count(tiers), slices(steps * tiers) {}

void RunStats::Merge(const RunStats& o) {
  for (size_t i = 0; i < slices.size() && i < o.slices.size(); ++i) slices[i].Merge(o.slices[i]);
  gateway_overhead_ns.Merge(o.gateway_overhead_ns);
  first_byte_ns.Merge(o.first_byte_ns);
  generator.Merge(o.generator);
}

}  // namespace sluice::loadgen
