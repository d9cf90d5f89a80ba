// MemoryResultCache: a ResultCache in this process's memory, least recently
// used first out within a byte budget, each entry live for ttl_ms after it
// was stored.
//
// An entry's size is its key, output and model version plus a fixed
// allowance for the bookkeeping (kEntryOverheadBytes); an answer larger
// than the whole budget is not kept. An expired entry is dropped when a
// lookup finds it; otherwise it ages out of the LRU order like any other.
// Times come from the injected clock.
//
// Thread-safe (one mutex; every call is O(1) apart from the evictions a
// store causes); never blocks on I/O; never fails.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/status.h"
#include "core/result_cache.h"

namespace sluice {

class MemoryResultCache final : public ResultCache {
 public:
  // Bytes counted per entry on top of its strings: list and map nodes,
  // string headers.
  static constexpr uint64_t kEntryOverheadBytes = 160;
  // The longest ttl_ms: 30 days (TimePoint arithmetic stays far from overflow).
  static constexpr int64_t kMaxTtlMs = 30ll * 24 * 3'600'000;

  struct Options {
    uint64_t max_bytes = 64ull << 20;  // the budget; >= 1
    int64_t ttl_ms = 300'000;          // an entry's life after it is stored; 1..kMaxTtlMs
    const Clock* clock = nullptr;      // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<MemoryResultCache>> Create(const Options& options);

  std::optional<CachedAnswer> Lookup(std::string_view key) override;
  void Store(std::string key, CachedAnswer answer) override;
  Stats stats() const override;

 private:
  struct Entry {
    std::string key;
    CachedAnswer answer;
    TimePoint expires;
    uint64_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first

  explicit MemoryResultCache(const Options& options);
  void EraseLocked(Lru::iterator it);  // REQUIRES: mu_ held

  const Options options_;
  mutable std::mutex mu_;
  Lru lru_;                                                    // GUARDED_BY(mu_)
  std::unordered_map<std::string_view, Lru::iterator> index_;  // GUARDED_BY(mu_); keys in lru_
  Stats stats_;                                                // GUARDED_BY(mu_)
};

}  // namespace sluice
