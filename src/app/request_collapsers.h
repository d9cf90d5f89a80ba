// RequestCollapsers: each model's request collapser (`collapse: true` in its
// config), for `serve` and a gateway, and the metrics of what collapsing and
// the result cache save.
//
// Metrics, labelled by model:
// - sluice_collapsed_requests_total: requests answered with an identical
//   request's batch item instead of their own;
// - sluice_collapse_groups: groups of identical requests waiting now, and
//   sluice_collapse_waiting_requests: the requests in them;
// - sluice_accelerator_items_saved_total: batch items the accelerator did
//   not run, for the cache's hits and the collapsed requests together (for
//   a model with a cache or a collapser).
//
// Thread-safe after setup. The registry, the queues and the executor must
// outlive this object; the destructor removes the metrics.
#pragma once

#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "core/request_collapser.h"
#include "core/result_cache.h"
#include "metrics/registry.h"

namespace sluice {

class RequestCollapsers {
 public:
  // `executor` runs the members' deadline timers; `ordering` is the queues'.
  RequestCollapsers(metrics::Registry* registry, Executor* executor, QueueOrdering ordering)
      : registry_(registry), executor_(executor), ordering_(ordering) {}
  ~RequestCollapsers();

  RequestCollapsers(const RequestCollapsers&) = delete;
  RequestCollapsers& operator=(const RequestCollapsers&) = delete;

  // Adds the next model (in config order): its collapser in front of `queue`
  // when `model.collapse` is set (null otherwise), and its metrics, which
  // count `cache`'s hits too (optional; not owned).
  Result<RequestCollapser*> Add(const ModelConfig& model, FrontDoorQueue* queue,
                                const ResultCache* cache);

 private:
  metrics::Registry* registry_;
  Executor* executor_;
  QueueOrdering ordering_;
  std::vector<std::unique_ptr<RequestCollapser>> collapsers_;  // index = model; null = off
  std::vector<metrics::Labels> labels_;                        // of every model added
};

}  // namespace sluice
