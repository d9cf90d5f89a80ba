#include "app/result_caches.h"

namespace sluice {
namespace {

struct Series {
  const char* name;
  const char* help;
  uint64_t ResultCache::Stats::*field;
  bool counter = false;  // a total that never decreases
};

constexpr Series kSeries[] = {
    {"sluice_cache_hits_total", "Requests answered from the model's result cache.",
     &ResultCache::Stats::hits, true},
    {"sluice_cache_misses_total",
     "Cacheable requests the result cache could not answer (expired entries included).",
     &ResultCache::Stats::misses, true},
    {"sluice_cache_evictions_total",
     "Result cache entries dropped to stay within the model's cache.max_bytes.",
     &ResultCache::Stats::evictions, true},
    {"sluice_cache_expired_total", "Result cache entries found past cache.ttl_ms and dropped.",
     &ResultCache::Stats::expired, true},
    {"sluice_cache_failures_total",
     "Result cache lookups and stores that failed (its store was down): the cache was bypassed.",
     &ResultCache::Stats::failures, true},
    {"sluice_cache_entries", "Answers held in the result cache.", &ResultCache::Stats::entries},
    {"sluice_cache_bytes", "Bytes the result cache holds, as its budget counts them.",
     &ResultCache::Stats::bytes},
};

}  // namespace

Result<std::unique_ptr<ResultCaches>> ResultCaches::Create(const std::vector<ModelConfig>& models,
                                                           metrics::Registry* registry,
                                                           const Clock* clock) {
  return Create(models, registry,
                [clock](const ModelConfig& m) -> Result<std::unique_ptr<ResultCache>> {
                  MemoryResultCache::Options o;
                  o.max_bytes = m.cache.max_bytes;
                  o.ttl_ms = m.cache.ttl_ms;
                  o.clock = clock;
                  auto cache = MemoryResultCache::Create(o);
                  if (!cache.ok()) return cache.status();
                  return std::unique_ptr<ResultCache>(std::move(cache).value());
                });
}

Result<std::unique_ptr<ResultCaches>> ResultCaches::Create(const std::vector<ModelConfig>& models,
                                                           metrics::Registry* registry,
                                                           const Factory& make) {
  std::unique_ptr<ResultCaches> out(new ResultCaches(registry));
  for (const ModelConfig& m : models) {
    if (!m.cache.enabled) {
      out->caches_.push_back(nullptr);
      continue;
    }
    auto cache = make(m);
    if (!cache.ok()) {
      return InvalidArgument("models: '" + m.name + "': " + cache.status().message());
    }
    ResultCache* c = cache->get();
    out->caches_.push_back(std::move(cache).value());
    metrics::Labels labels = {{"model", m.name}};
    for (const Series& s : kSeries) {
      auto read = [c, field = s.field] { return static_cast<double>(c->stats().*field); };
      if (s.counter) {
        registry->AddCallbackCounter(s.name, s.help, labels, read);
      } else {
        registry->AddCallbackGauge(s.name, s.help, labels, read);
      }
    }
    out->labels_.push_back(std::move(labels));
  }
  return out;
}

ResultCaches::~ResultCaches() {
  for (const metrics::Labels& labels : labels_) {
    for (const Series& s : kSeries) registry_->RemoveCallback(s.name, labels);
  }
}

}  // namespace sluice
