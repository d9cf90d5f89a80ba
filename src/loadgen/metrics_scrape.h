// Reads the gateway's batching figures from its Prometheus text (`GET
// /metrics`) and turns two scrapes into what happened between them.
//
// Only what the report needs is parsed: `sluice_batch_size_bucket{model,le}`,
// `sluice_batch_size_sum{model}`, `sluice_batch_size_count{model}` and
// `sluice_accelerator_utilization{model}`; every other line is skipped
// unparsed. A malformed line of one of those metrics is an error (it means
// the scrape cannot be trusted), as is a bucket without `le`.
//
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::loadgen {

struct GatewaySnapshot {
  struct Model {
    // (le, cumulative batches with size <= le), sorted by le; +Inf is
    // std::numeric_limits<double>::infinity().
    std::vector<std::pair<double, double>> batch_buckets;
    double batch_sum = 0;               // requests in all batches so far
    double batch_count = 0;             // batches so far
    std::optional<double> utilization;  // busy fraction over the gateway's window
  };
  std::map<std::string, Model> models;  // by the `model` label
};

Result<GatewaySnapshot> ParseGatewayMetrics(std::string_view text);

struct BatchSizeBucket {
  double le = 0;       // upper bound of the bucket (inclusive); +Inf for the last
  double batches = 0;  // batches between the scrapes whose size fell in (previous le, le]
};

// One model's batching between two scrapes.
struct ModelGatewayDelta {
  std::string model;
  double batches = 0;           // batches dispatched
  double batched_requests = 0;  // requests inside them
  double mean_batch_size = 0;   // batched_requests / batches; 0 without batches
  std::vector<BatchSizeBucket> batch_sizes;
  std::optional<double> utilization_before;  // gauge at the first scrape
  std::optional<double> utilization_after;   // gauge at the second scrape
};

// Models present in `after`, in name order. Counters that went backwards (the
// gateway restarted in between) are treated as starting from zero.
std::vector<ModelGatewayDelta> DiffGateway(const GatewaySnapshot& before,
                                           const GatewaySnapshot& after);

}  // namespace sluice::loadgen
