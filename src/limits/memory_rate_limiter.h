// MemoryRateLimiter: the in-process RateLimiter (see rate_limiter.h for the
// contract), for `sluice serve` and single-gateway deployments.
//
// Algorithm. GCRA per key and limit (gcra.h): the state of a key is two
// times, when its request bucket and its token bucket are full again. A
// check is O(1): one hash, one shard lock, a hash-map lookup and integer
// arithmetic on both limits; both are decided before either is stored, so a
// rejection by one limit consumes nothing from the other.
//
// Concurrency. Keys are spread over `shard_count` shards by hash; each shard
// has its own mutex, map and LRU list, so checks for different keys rarely
// contend and there is no global lock on the hot path.
//
// Memory bound. A key's state is needed only while one of its buckets is
// not full; once both are full again (at most one window, 60 s, after its
// last check; up to two more after an extra charge by Reconcile) the state
// equals "no state" and is dropped without changing any decision. Each shard keeps its keys in
// least-recently-used order and, on every call, drops up to two least-recently-used keys that are
// full again, so idle keys are forgotten as traffic flows. The hard cap is max_tracked_keys (split
// evenly over the shards): inserting into a full shard evicts its least-recently-used key even if
// that key still owes time — that key then gets a fresh bucket (fail-open; counted in
// lossy_evictions()). With the cap above the number of keys active in any
// one minute, no eviction is lossy. Memory is about 150 bytes per tracked
// key plus the key's length.
//
// Thread-safety: all methods are thread-safe. Ownership: `clock` is not
// owned and must outlive the limiter.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "limits/rate_limiter.h"

namespace sluice {

class MemoryRateLimiter final : public RateLimiter {
 public:
  struct Options {
    // Number of independently locked shards; a power of two, 1..65536.
    size_t shard_count = 64;
    // Most keys whose state is kept (split evenly over the shards, at least
    // one per shard); >= 1. See "Memory bound".
    size_t max_tracked_keys = 100'000;
    const Clock* clock = nullptr;  // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the bad field.
  static Result<std::unique_ptr<MemoryRateLimiter>> Create(const Options& options);

  Result<RateLimitDecision> Check(std::string_view key, const RateLimitPolicy& policy,
                                  int64_t tokens) override;
  void Reconcile(std::string_view key, const RateLimitPolicy& policy, int64_t charged_tokens,
                 int64_t actual_tokens) override;

  // Keys with state right now (locks each shard in turn; for metrics/tests).
  size_t tracked_keys() const;
  // Evictions of keys whose buckets were not full yet (see "Memory bound").
  uint64_t lossy_evictions() const { return lossy_evictions_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::string key;
    int64_t requests_tat_ns = 0;  // GCRA state of the requests limit
    int64_t tokens_tat_ns = 0;    // GCRA state of the tokens limit
  };
  using Lru = std::list<Entry>;  // most recently used first
  struct alignas(64) Shard {
    mutable std::mutex mu;
    Lru lru;                                                  // GUARDED_BY(mu)
    std::unordered_map<std::string_view, Lru::iterator> map;  // GUARDED_BY(mu); views into lru
  };

  explicit MemoryRateLimiter(const Options& options);

  Shard& ShardFor(std::string_view key);
  // The key's entry moved to the front of the LRU, or nullptr when absent.
  // REQUIRES: shard.mu held.
  Entry* Find(Shard& shard, std::string_view key);
  // A new entry for an absent key, evicting if the shard is full.
  // REQUIRES: shard.mu held.
  Entry* Insert(Shard& shard, std::string_view key, int64_t now_ns);
  // Drops up to `max` least-recently-used entries that are full again.
  // REQUIRES: shard.mu held.
  void DropFull(Shard& shard, int64_t now_ns, int max);

  const Options options_;
  const size_t keys_per_shard_;
  const int shard_shift_;  // 64 - log2(shard_count): top hash bits pick the shard
  std::vector<Shard> shards_;
  std::atomic<uint64_t> lossy_evictions_{0};
};

}  // namespace sluice
