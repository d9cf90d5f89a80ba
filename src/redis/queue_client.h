// RedisQueueClient: the gateway's side of the Redis request queue — enqueue
// a batch of one model's requests per script call, each with its key's
// optional rate-limit check and the queue bounds, in one atomic round trip.
//
// Each model has one ZSET per tier (keys.h), scored by dispatch deadline;
// the claim script (batch_claimer.h) merges them in EDF or strict-priority
// order, like MemoryQueue. Enqueue stores one hash entry per request (its
// scheduling fields and payload), adds the ids to their tiers' ZSETs with
// one ZADD per tier and pushes wake tokens for blocked workers (scripts.h).
// Commands per batch on the gateway path: this one EVALSHA (one per queue
// shard the batch's requests fall in), then nothing
// until the results arrive on the gateway's channel (result_listener.h).
//
// Combined rate limit: on a single Redis (or a primary with replicas) the
// check rides in the enqueue script. The states' hash sluice:rl lives in
// another slot than the model's keys, so on Redis Cluster (CROSSSLOT) set
// Options::separate_limiter: each item's limit is then checked with it
// first — its own call, in its shard's slot, pipelined — and only the items
// it allows go to the enqueue script; an allowed item that the queue then
// refuses gets its tokens back (its request is counted, as it is in memory).
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive the client. Blocking: never; `done` runs on the connection's
// thread, or inline when Redis is down (kUnavailable at once) or the item is
// invalid.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "limits/rate_limiter.h"
#include "redis/client.h"
#include "redis/keys.h"
#include "redis/redis_rate_limiter.h"
#include "redis/request_codec.h"

namespace sluice::redis {

class RedisQueueClient {
 public:
  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;                      // key names (prefix)
    // Tiers in the tier table (ZSETs per model); the same number as the
    // workers' claimers use. 1..64.
    size_t tier_count = 3;
    // Most requests queued per model (all tiers); a full queue rejects with
    // kUnavailable. 0 = unbounded.
    size_t capacity = 10'000;
    // Wake tokens kept per model (LTRIM cap); >= 1. Tokens beyond the number
    // of blocked workers are useless; 64 covers large worker pools.
    size_t wake_list_cap = 64;
    // Shards of each model's queue (keys.h; Redis Cluster: so that one
    // model's queue spreads over several masters); 1..64. Each request goes
    // to shard ShardOfRequest(id); `capacity` and tier depth limits are
    // split evenly over the shards (rounded up), and EDF order holds within
    // a shard.
    size_t queue_shards = 1;
    // Redis Cluster: check rate limits with this limiter (a RedisRateLimiter
    // on the same cluster) before the enqueue call; null = in the enqueue
    // script. Not owned.
    RedisRateLimiter* separate_limiter = nullptr;
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

  struct EnqueueItem {
    WireRequest request;
    EnqueueOptions options;
    EnqueueDone done;
  };

  // Most requests sent in one script call; EnqueueBatch() splits longer
  // batches (keeps every Lua unpack() far below its stack limit).
  static constexpr size_t kMaxItemsPerCall = 1'000;

  // Queues each item's request (tier < tier_count, model and gateway id
  // valid key parts, all items of the same model) unless a bound or its
  // limit rejects it, deciding them in order. Each item's `done` runs
  // exactly once. Items that fail validation are answered inline
  // (kInvalidArgument) and the rest are sent. An id repeated in one call
  // is decided once: a repeat gets its first copy's answer, or "request id
  // already queued" when that copy was queued.
  void EnqueueBatch(std::vector<EnqueueItem> items);

  // Removes `ids` of `model` that are still queued (not claimed by a
  // worker); `done` gets the ids removed, or the first error. One call per
  // shard involved. Never blocks.
  using WithdrawDone = std::function<void(Result<std::vector<std::string>>)>;
  void WithdrawAsync(const std::string& model, std::vector<std::string> ids, WithdrawDone done);

  // EnqueueBatch() of one item.
  void Enqueue(const WireRequest& request, const EnqueueOptions& options, EnqueueDone done);

  const Options& options() const { return options_; }

 private:
  explicit RedisQueueClient(const Options& options) : options_(options) {}

  // Checks the items' limits with separate_limiter, answers those it
  // rejects and sends the rest (validated items of one model).
  void CheckThenSend(const std::string& model, std::vector<EnqueueItem> items);
  // One script call per shard and kMaxItemsPerCall items. Static: they may
  // run from a callback after the client is gone.
  static void SendChunks(const Options& options, const std::string& model,
                         std::vector<EnqueueItem> items);
  // One script call for up to kMaxItemsPerCall validated items, all of
  // shard `shard`.
  static void SendChunk(const Options& options, const std::string& model, size_t shard,
                        std::shared_ptr<std::vector<EnqueueItem>> items);

  const Options options_;
};

}  // namespace sluice::redis
