#include "core/memory_result_cache.h"

namespace sluice {

Result<std::unique_ptr<MemoryResultCache>> MemoryResultCache::Create(const Options& options) {
  if (options.max_bytes < 1) {
    return InvalidArgument("result cache: max_bytes must be at least 1");
  }
  if (options.ttl_ms < 1 || options.ttl_ms > kMaxTtlMs) {
    return InvalidArgument("result cache: ttl_ms must be between 1 and 30 days");
  }
  return std::unique_ptr<MemoryResultCache>(new MemoryResultCache(options));
}

namespace {
MemoryResultCache::Options WithClock(MemoryResultCache::Options o) {
  if (o.clock == nullptr) o.clock = SystemClock();
  return o;
}
}  // namespace

MemoryResultCache::MemoryResultCache(const Options& options) : options_(WithClock(options)) {}

std::optional<CachedAnswer> MemoryResultCache::Lookup(std::string_view key) {
  const TimePoint now = options_.clock->Now();
  std::lock_guard lock(mu_);
  auto found = index_.find(key);
  if (found == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  Lru::iterator it = found->second;
  if (it->expires <= now) {
    ++stats_.expired;
    ++stats_.misses;
    EraseLocked(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);  // iterators stay valid
  ++stats_.hits;
  return it->answer;
}

void MemoryResultCache::Store(std::string key, CachedAnswer answer) {
  const uint64_t bytes =
      key.size() + answer.output.size() + answer.model_version.size() + kEntryOverheadBytes;
  if (bytes > options_.max_bytes) return;  // would evict everything and still not fit
  const TimePoint expires = options_.clock->Now() + Millis(options_.ttl_ms);
  std::lock_guard lock(mu_);
  if (auto found = index_.find(key); found != index_.end()) EraseLocked(found->second);
  while (!lru_.empty() && stats_.bytes + bytes > options_.max_bytes) {
    ++stats_.evictions;
    EraseLocked(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{std::move(key), std::move(answer), expires, bytes});
  index_.emplace(lru_.front().key, lru_.begin());
  stats_.bytes += bytes;
  ++stats_.entries;
  ++stats_.stores;
}

ResultCache::Stats MemoryResultCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void MemoryResultCache::EraseLocked(Lru::iterator it) {
  index_.erase(it->key);
  stats_.bytes -= it->bytes;
  --stats_.entries;
  lru_.erase(it);
}

}  // namespace sluice
