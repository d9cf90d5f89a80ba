// The figures of the live dashboard (GET /dashboard/snapshot), as JSON:
//
//   {"time_ms": <unix ms>,
//    "health": <the body of GET /internal/health>,
//    "requests": {tier: {status: count}},        answered, all models
//    "shed": {model: {reason: count}},           refused before queueing
//    "latency": {"bounds": [s...], "counts": [n...]},   end to end, all
//    "batch_size": {model: {"bounds": [...], "counts": [...]}}}
//
// Counts are cumulative since the process started (zero ones left out) and
// histogram counts are per bucket (not cumulative; the last is +Inf): the
// page turns two snapshots into rates and percentiles. Nothing is kept
// between calls, so a dashboard nobody watches costs nothing.
#pragma once

#include <cstdint>
#include <string>

#include "http/front_door.h"
#include "metrics/registry.h"

namespace sluice::http {

std::string DashboardSnapshotJson(const HealthSnapshot& health, const metrics::Registry& registry,
                                  int64_t unix_ms);

}  // namespace sluice::http
