#include "limits/memory_rate_limiter.h"

#include <algorithm>
#include <bit>
#include <functional>

#include "limits/gcra.h"

namespace sluice {
namespace {

int64_t NowNs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock.Now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<MemoryRateLimiter>> MemoryRateLimiter::Create(const Options& options) {
  if (options.shard_count < 1 || options.shard_count > 65536 ||
      !std::has_single_bit(options.shard_count)) {
    return InvalidArgument("rate_limiter.shard_count: must be a power of two in 1..65536, got " +
                           std::to_string(options.shard_count));
  }
  if (options.max_tracked_keys < 1) {
    return InvalidArgument("rate_limiter.max_tracked_keys: must be >= 1, got 0");
  }
  Options resolved = options;
  if (resolved.clock == nullptr) resolved.clock = SystemClock();
  return std::unique_ptr<MemoryRateLimiter>(new MemoryRateLimiter(resolved));
}

MemoryRateLimiter::MemoryRateLimiter(const Options& options)
    : options_(options),
      keys_per_shard_(std::max<size_t>(
          1, (options.max_tracked_keys + options.shard_count - 1) / options.shard_count)),
      shard_shift_(64 - std::countr_zero(options.shard_count)),
      shards_(options.shard_count) {}

MemoryRateLimiter::Shard& MemoryRateLimiter::ShardFor(std::string_view key) {
  if (shards_.size() == 1) return shards_[0];
  // Fibonacci hashing: the top bits of the mixed hash pick the shard, so the
  // shard choice stays independent of the map's bucket choice (low bits).
  const uint64_t mixed =
      static_cast<uint64_t>(std::hash<std::string_view>{}(key)) * 0x9E3779B97F4A7C15ull;
  return shards_[mixed >> shard_shift_];
}

MemoryRateLimiter::Entry* MemoryRateLimiter::Find(Shard& shard, std::string_view key) {
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return nullptr;
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return &*it->second;
}

MemoryRateLimiter::Entry* MemoryRateLimiter::Insert(Shard& shard, std::string_view key,
                                                    int64_t now_ns) {
  if (shard.map.size() >= keys_per_shard_) {
    DropFull(shard, now_ns, 1);
    if (shard.map.size() >= keys_per_shard_) {
      // Every tracked key still owes time: forget the least recently used.
      lossy_evictions_.fetch_add(1, std::memory_order_relaxed);
      shard.map.erase(shard.lru.back().key);
      shard.lru.pop_back();
    }
  }
  shard.lru.push_front(Entry{std::string(key)});
  shard.map.emplace(std::string_view(shard.lru.front().key), shard.lru.begin());
  return &shard.lru.front();
}

void MemoryRateLimiter::DropFull(Shard& shard, int64_t now_ns, int max) {
  for (int i = 0; i < max && !shard.lru.empty(); ++i) {
    const Entry& oldest = shard.lru.back();
    if (oldest.requests_tat_ns > now_ns || oldest.tokens_tat_ns > now_ns) return;
    shard.map.erase(oldest.key);
    shard.lru.pop_back();
  }
}

Result<RateLimitDecision> MemoryRateLimiter::Check(std::string_view key,
                                                   const RateLimitPolicy& policy, int64_t tokens) {
  const int64_t rpm = policy.requests_per_minute;
  const int64_t tpm = policy.tokens_per_minute;
  if (rpm < 0 || tpm < 0) {
    return InvalidArgument("rate limit policy: limits must be >= 0, got requests_per_minute=" +
                           std::to_string(rpm) + ", tokens_per_minute=" + std::to_string(tpm));
  }
  if (tokens < 0) return InvalidArgument("rate limit: tokens must be >= 0");

  RateLimitDecision d;
  d.token_cost = tokens;
  if (rpm == 0 && tpm == 0) return d;  // unlimited: no state, no headers

  const int64_t now_ns = NowNs(*options_.clock);
  int64_t requests_tat_ns = 0;
  int64_t tokens_tat_ns = 0;
  gcra::Outcome by_requests;
  gcra::Outcome by_tokens;
  by_requests.allowed = by_tokens.allowed = true;
  {
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mu);
    DropFull(shard, now_ns, 2);
    Entry* entry = Find(shard, key);
    if (entry != nullptr) {
      requests_tat_ns = entry->requests_tat_ns;
      tokens_tat_ns = entry->tokens_tat_ns;
    }
    if (rpm > 0) by_requests = gcra::Check(requests_tat_ns, now_ns, rpm, 1);
    if (tpm > 0) by_tokens = gcra::Check(tokens_tat_ns, now_ns, tpm, tokens);
    d.allowed = by_requests.allowed && by_tokens.allowed;
    if (d.allowed) {
      if (entry == nullptr) entry = Insert(shard, key, now_ns);
      if (rpm > 0) entry->requests_tat_ns = requests_tat_ns = by_requests.tat_ns;
      if (tpm > 0) entry->tokens_tat_ns = tokens_tat_ns = by_tokens.tat_ns;
    }
  }

  if (rpm > 0) d.requests = LimitStateAfter(requests_tat_ns, now_ns, rpm);
  if (tpm > 0) d.tokens = LimitStateAfter(tokens_tat_ns, now_ns, tpm);
  if (!d.allowed) FillRejection(policy, by_requests, by_tokens, &d);
  return d;
}

void MemoryRateLimiter::Reconcile(std::string_view key, const RateLimitPolicy& policy,
                                  int64_t charged_tokens, int64_t actual_tokens) {
  const int64_t tpm = policy.tokens_per_minute;
  if (tpm <= 0 || charged_tokens < 0 || actual_tokens < 0) return;
  const int64_t delta = actual_tokens - charged_tokens;
  if (delta == 0) return;
  const int64_t now_ns = NowNs(*options_.clock);
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  DropFull(shard, now_ns, 2);
  Entry* entry = Find(shard, key);
  if (entry == nullptr) {
    if (delta < 0) return;  // already full: nothing to refund
    entry = Insert(shard, key, now_ns);
  }
  entry->tokens_tat_ns = gcra::Adjust(entry->tokens_tat_ns, now_ns, tpm, delta);
}

size_t MemoryRateLimiter::tracked_keys() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    total += shard.map.size();
  }
  return total;
}

}  // namespace sluice
