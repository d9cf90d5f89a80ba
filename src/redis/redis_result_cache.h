// RedisResultCache: one model's ResultCache in Redis, shared by every
// gateway (`sluice gateway`, and `serve` with a `redis:` section).
//
// Keys (keys.h), under the model's hash tag: sluice:cache:{m}:e:<key> holds
// an answer (tokens "\n" model version "\n" output) with a time to live of
// ttl_ms; sluice:cache:{m}:lru ranks the keys by last use (epoch µs) and
// sluice:cache:{m}:sizes holds each one's bytes as the budget counts them
// (value + key + kEntryOverheadBytes) and, under "", their total. Store()
// is one script: it keeps the answer, then drops up to kMaxDropsPerStore
// keys whose last use is older than ttl_ms (expired) and, while the total
// is over max_bytes, the least recently used (evicted). Lookup() is one
// script: GET; a hit moves the key to the front of the LRU order, a miss
// on an expired answer drops its key from the order and the total. (An
// answer used less than ttl_ms before it expired, and never looked up
// again, counts in the total until ttl_ms after that last use.)
//
// A store that fails is bypassed: Lookup() waits at most lookup_timeout_ms
// for its reply and then misses, Store() drops the answer; either counts a
// failure (stats().failures) and logs (at most once per 10 s). Never an
// error to the client.
//
// Stats: hits, misses, stores and failures count this process's calls;
// evictions and expired what its calls dropped; entries and bytes are
// the model's in Redis as the last store saw them.
//
// Thread-safe. Lookup() blocks up to lookup_timeout_ms (never call it from
// a Redis callback); Store() never blocks. `connection` must outlive the
// cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result_cache.h"
#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

class RedisResultCache final : public ResultCache {
 public:
  static constexpr uint64_t kEntryOverheadBytes = 96;  // Redis's per key, roughly
  static constexpr int kMaxDropsPerStore = 64;
  static constexpr int64_t kMaxTtlMs = 30ll * 24 * 3'600'000;  // 30 days

  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;
    std::string model;                 // a valid key part
    int64_t ttl_ms = 300'000;          // 1..kMaxTtlMs
    uint64_t max_bytes = 64ull << 20;  // >= 1
    int64_t lookup_timeout_ms = 50;    // 1..10000
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisResultCache>> Create(const Options& options);

  std::optional<CachedAnswer> Lookup(std::string_view key) override;
  void Store(std::string key, CachedAnswer answer) override;
  Stats stats() const override;

 private:
  struct Counters;
  explicit RedisResultCache(const Options& options);

  const Options options_;
  const std::string entry_prefix_, lru_key_, sizes_key_;
  // Shared with the stores' replies, which may outlive the cache.
  std::shared_ptr<Counters> counters_;
};

// An answer's stored form, and back (nullopt: not an answer's). Exposed for
// tests.
std::string EncodeCachedAnswer(const CachedAnswer& answer);
std::optional<CachedAnswer> ParseCachedAnswer(std::string_view value);

}  // namespace sluice::redis
