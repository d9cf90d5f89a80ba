// What a load run counted: per (step, tier) outcomes and latency, the
// gateway's self-reported overhead, and how well the generator itself kept to
// its schedule. Each load thread fills its own RunStats; Merge() combines
// them once the threads are done.
//
// Latency is from the request's *scheduled* send time to the last byte of its
// response, in nanoseconds, for 200 responses only (errors are counted, not
// timed: a fast 503 must not make the latency look better).
//
// Thread-safety: none (plain data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loadgen/latency_histogram.h"

namespace sluice::loadgen {

// Requests by how they ended.
struct OutcomeCounts {
  uint64_t scheduled = 0;         // due in the measured window
  uint64_t ok = 0;                // HTTP 200 (202 for async submissions)
  uint64_t status_429 = 0;        // rate limited
  uint64_t status_503 = 0;        // shed / queue full / unavailable
  uint64_t status_504 = 0;        // deadline exceeded in the gateway
  uint64_t other_status = 0;      // any other HTTP status
  uint64_t transport_errors = 0;  // connection failed while the request was on it
  uint64_t timeouts = 0;          // no answer by the end of the drain

  uint64_t answered() const { return ok + status_429 + status_503 + status_504 + other_status; }
  // Everything that is not a 200 (429/503/504, other statuses, transport, timeouts).
  uint64_t failed() const { return scheduled - ok; }
  uint64_t other() const { return other_status + transport_errors + timeouts; }
  void Merge(const OutcomeCounts& o);
};

// One tier in one step (or any merge of those).
struct SliceStats {
  OutcomeCounts counts;
  LatencyHistogram latency_ns;  // 200 responses, from the scheduled time
  void Merge(const SliceStats& o);
};

// How the generator kept to its schedule (measured requests only).
struct GeneratorStats {
  // From a request's scheduled time to the moment the generator's loop
  // handled it (sent it, or queued it for a connection): the generator's own
  // lateness, from a busy CPU or thread.
  LatencyHistogram schedule_lag_ns;
  uint64_t late = 0;  // schedule lag above RunnerOptions::late_threshold_us
  // Requests that found every connection busy and waited for one; the wait
  // is part of their latency (it is in the schedule), but it says that
  // --connections, not the server, may have been the limit.
  uint64_t connection_waits = 0;
  LatencyHistogram connection_wait_ns;
  uint64_t max_waiting = 0;       // most requests waiting for a connection at once
  uint64_t connect_failures = 0;  // connection attempts that failed
  uint64_t reconnects = 0;        // connections reopened (server closed or error)
  uint64_t stale_retries = 0;     // requests resent once because a kept-alive
                                  // connection had been closed before the request
  // CPU time a load thread used, as a fraction of the run's wall time (the
  // busiest thread). Near 1 with lag: the generator was at its limit. Low
  // with lag: the thread was ready but not scheduled (a busy machine).
  double max_thread_busy = 0;
  void Merge(const GeneratorStats& o);
};

struct RunStats {
  // REQUIRES: steps > 0 and tiers > 0.
  RunStats(size_t steps, size_t tiers);

  SliceStats& slice(size_t step, size_t tier) { return slices[step * tier_count + tier]; }
  const SliceStats& slice(size_t step, size_t tier) const {
    return slices[step * tier_count + tier];
  }

  size_t step_count;
  size_t tier_count;
  std::vector<SliceStats> slices;        // step-major
  LatencyHistogram gateway_overhead_ns;  // Server-Timing gateway;dur of 200 responses
  // 200 responses' time to their header, when timed (--api openai-chat: a
  // streamed answer's first token), from the scheduled time.
  LatencyHistogram first_byte_ns;
  GeneratorStats generator;

  // REQUIRES: same shape.
  void Merge(const RunStats& o);
};

}  // namespace sluice::loadgen
