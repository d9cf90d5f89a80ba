// ResultCaches: each model's result cache (`cache.enabled` in its config)
// and their metrics: in this process's memory for `serve` (Create), or made
// by the caller's factory (a gateway's, in Redis).
//
// Metrics, labelled by model: sluice_cache_hits_total,
// sluice_cache_misses_total, sluice_cache_evictions_total,
// sluice_cache_expired_total, sluice_cache_failures_total,
// sluice_cache_entries, sluice_cache_bytes.
//
// Thread-safe after Create(). The registry must outlive this object; the
// destructor removes the metrics.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "core/memory_result_cache.h"
#include "metrics/registry.h"

namespace sluice {

class ResultCaches {
 public:
  // Errors: kInvalidArgument naming the model's field.
  static Result<std::unique_ptr<ResultCaches>> Create(const std::vector<ModelConfig>& models,
                                                      metrics::Registry* registry,
                                                      const Clock* clock = nullptr);
  // A model's cache (called for those with cache.enabled); errors name the
  // field.
  using Factory = std::function<Result<std::unique_ptr<ResultCache>>(const ModelConfig&)>;
  static Result<std::unique_ptr<ResultCaches>> Create(const std::vector<ModelConfig>& models,
                                                      metrics::Registry* registry,
                                                      const Factory& make);
  ~ResultCaches();

  ResultCaches(const ResultCaches&) = delete;
  ResultCaches& operator=(const ResultCaches&) = delete;

  // Model `index`'s cache, or null when it has none.
  ResultCache* For(size_t index) const { return caches_[index].get(); }

 private:
  explicit ResultCaches(metrics::Registry* registry) : registry_(registry) {}

  metrics::Registry* registry_;
  std::vector<std::unique_ptr<ResultCache>> caches_;  // index = model; null = off
  std::vector<metrics::Labels> labels_;               // of the caches that exist
};

}  // namespace sluice
