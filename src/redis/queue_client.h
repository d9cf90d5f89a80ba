// RedisQueueClient: the gateway's side of the Redis request queue — enqueue
// one request per script call, optionally with the key's rate-limit check
// and a per-tier depth bound in the same atomic round trip.
//
// Each model has one ZSET per tier (keys.h), scored by dispatch deadline;
// the claim script (batch_claimer.h) merges them in EDF or strict-priority
// order, like MemoryQueue. Enqueue stores the payload and a small meta
// record, adds the id to its tier's ZSET and pushes a wake token for blocked
// workers. Commands per request on the gateway path: this one EVALSHA
// (enqueue + limit + bound), then nothing until the result arrives on the
// gateway's channel (result_listener.h).
//
// Combined rate limit: the check uses the key sluice:rl:{key_id}, which in
// Redis Cluster lives in another slot than the model's keys (CROSSSLOT). On
// a single Redis (or a primary with replicas) pass `rate_limit`; on a
// Cluster call RedisRateLimiter::CheckAsync first and enqueue without it.
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive the client. Blocking: never; `done` runs on the connection's
// thread, or inline when Redis is down (kUnavailable at once).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "limits/rate_limiter.h"
#include "redis/connection.h"
#include "redis/keys.h"
#include "redis/request_codec.h"

namespace sluice::redis {

class RedisQueueClient {
 public:
  struct Options {
    RedisConnection* connection = nullptr;  // required; not owned
    KeySpace keys;                          // key names (prefix)
    // Tiers in the tier table (ZSETs per model); the same number as the
    // workers' claimers use. 1..64.
    size_t tier_count = 3;
    // Most requests queued per model (all tiers); a full queue rejects with
    // kUnavailable. 0 = unbounded.
    size_t capacity = 10'000;
    // Wake tokens kept per model (LTRIM cap); >= 1. Tokens beyond the number
    // of blocked workers are useless; 64 covers large worker pools.
    size_t wake_list_cap = 64;
  };

  // The key's limit, checked in the same script (see the file comment).
  struct RateLimitCheck {
    std::string key_id;
    RateLimitPolicy policy;
    int64_t tokens = 0;  // input + max_tokens, as charged by the front door
  };

  struct EnqueueOptions {
    std::optional<RateLimitCheck> rate_limit;
    // Admission: reject (kUnavailable) when the model's queue already holds
    // this many requests (TierPolicy::max_queue_depth); 0 = no tier bound.
    size_t tier_depth_limit = 0;
  };

  struct EnqueueResult {
    // OK: queued. kRateLimited (429): the key's limit rejected it (see
    // rate_limit). kUnavailable (503): queue full / tier bound / Redis down.
    // kInvalidArgument: an id already queued, or a bad field.
    Status status;
    size_t depth = 0;  // the model's queue depth after the call
    int64_t server_now_us = 0;
    bool queue_full = false;  // the bound (capacity or tier) rejected it
    // Set when a rate-limit check ran (also when the queue was full).
    std::optional<RateLimitDecision> rate_limit;
  };
  using EnqueueDone = std::function<void(EnqueueResult)>;

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisQueueClient>> Create(const Options& options);

  // Queues `request` (its tier < tier_count, model and gateway id valid key
  // parts) unless a bound or the limit rejects it. `done` runs exactly once.
  void Enqueue(const WireRequest& request, const EnqueueOptions& options, EnqueueDone done);

  const Options& options() const { return options_; }

 private:
  explicit RedisQueueClient(const Options& options) : options_(options) {}

  const Options options_;
};

}  // namespace sluice::redis
