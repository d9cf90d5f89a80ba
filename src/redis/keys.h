// KeySpace: the names of every Redis key and channel Sluice uses.
//
// Per-model keys share the hash tag {model}, so Redis Cluster keeps one
// model's queue, payloads, leases and wake list in one slot and every
// per-model script touches one slot. With the default prefix "sluice":
//
//   sluice:{m}:q:<tier>     ZSET  queued requests of tier <tier> (index
//                                 into the tier table): member = the
//                                 dispatch deadline in epoch µs as 16
//                                 decimal digits, "|", the id
//                                 (QueueMember); score = 0. Members of
//                                 equal score sort as strings, so they sort
//                                 by deadline (equal deadlines in id order),
//                                 and no script formats or parses a score
//   sluice:{m}:req          HASH  id -> "tier|deadline_us|arrival_us|
//                                 attempts|gateway_id|" + request payload
//                                 (request_codec.h; the scripts read the
//                                 prefix without parsing JSON), while the
//                                 request is queued or leased
//   sluice:{m}:leases       ZSET  leases (one per claimed batch), score =
//                                 lease expiry, epoch microseconds
//   sluice:{m}:batches      HASH  lease -> ids not answered yet (a count);
//                                 lease + "|ids" -> the batch's ids joined
//                                 by "|"; lease + "|p" -> "1" once some
//                                 are answered (scripts.h, Claim)
//   sluice:{m}:wake         LIST  wake tokens for blocked claimers (capped)
//   sluice:{m}:dead         LIST  dead letters, newest first (capped; JSON,
//                                 redis/dead_letters.h)
//   sluice:{m}:dead:stats   HASH  total, dropped: dead letters ever pushed,
//                                 and pushed out by the cap
//   sluice:{m}:workers      HASH  worker id -> heartbeat (JSON)
//   sluice:{m}:workers:exp  ZSET  worker id -> heartbeat expiry, epoch µs
//   sluice:rl               HASH  rate-limit state: key_id -> the GCRA TATs
//                                 in epoch µs of the requests / tokens
//                                 limits, two little-endian doubles (16
//                                 bytes; script_prelude.cc). One field per
//                                 API key ever checked (tens of bytes
//                                 each), kept:
//                                 a state from the past reads as full
//                                 buckets; plus the empty field, a mark
//                                 whose long value keeps the hash a
//                                 hashtable (script_prelude.cc, RL_MARK). On
//                                 Redis Cluster the keys are spread over
//                                 sluice:rl:{|n} instead (RedisRateLimiter
//                                 key_shards)
//   channel sluice:results:{gateway_id}   one message per batch (a JSON
//                                 array of results, request_codec.h)
//   sluice:cache:{m}:e:<k>  STRING  a cached answer of model m, <k> = its
//                                 result cache key (redis_result_cache.h)
//   sluice:cache:{m}:lru    ZSET  cache keys by last use, epoch µs
//   sluice:cache:{m}:sizes  HASH  cache key -> bytes; "" -> their total
//   sluice:collapse:{k}     STRING  the carrier of the identical requests
//                                 of result cache key <k> now in flight,
//                                 and sluice:collapse:{k}:w LIST the other
//                                 gateways' requests waiting for one
//                                 (collapse_link.h)
//   sluice:task:{owner}:<id>  STRING  an async / Idempotency-Key task of API
//                                 key `owner` (redis_task_store.h)
//   sluice:idem:{owner}:<h>   STRING  an Idempotency-Key of `owner`, <h> =
//                                 SHA-256 hex of the key: digest "|" task id
//
// Queue shards (redis.queue_shards > 1, for Redis Cluster): shard k >= 1 of
// model m uses the same queue keys (q:<tier>, req, leases, batches, wake, dead,
// dead:stats) with the hash tag {m|k} instead of {m} — another slot, so
// another master may serve it. Pass QueueShard(m, k) where a function below
// takes `model`. A request lives in shard ShardOfRequest(id, shards).
//
// Value type; thread-safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::redis {

class KeySpace {
 public:
  explicit KeySpace(std::string prefix = "sluice") : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }

  std::string Queue(std::string_view model, size_t tier) const {
    return Model(model) + ":q:" + std::to_string(tier);
  }
  // Queue(model, 0..tier_count-1).
  std::vector<std::string> Queues(std::string_view model, size_t tier_count) const;
  std::string Payloads(std::string_view model) const { return Model(model) + ":req"; }
  std::string Leases(std::string_view model) const { return Model(model) + ":leases"; }
  std::string Batches(std::string_view model) const { return Model(model) + ":batches"; }
  std::string Wake(std::string_view model) const { return Model(model) + ":wake"; }
  std::string Dead(std::string_view model) const { return Model(model) + ":dead"; }
  std::string DeadStats(std::string_view model) const { return Model(model) + ":dead:stats"; }
  std::string Workers(std::string_view model) const { return Model(model) + ":workers"; }
  std::string WorkerExpiry(std::string_view model) const { return Model(model) + ":workers:exp"; }
  // The hash of every key's rate-limit state (one Redis; fields: key ids).
  std::string RateLimits() const { return prefix_ + ":rl"; }
  // Shard `shard` of the rate-limit states when the limiter spreads keys
  // over slots (RedisRateLimiter::Options::key_shards): the tag "|shard" is
  // never a model's ('|' is not allowed in model names).
  std::string RateLimitsInShard(size_t shard) const {
    return prefix_ + ":rl:{|" + std::to_string(shard) + "}";
  }
  std::string ResultChannel(std::string_view gateway_id) const {
    return ResultChannelPrefix() + std::string(gateway_id) + "}";
  }
  // Model `model`'s result cache (redis_result_cache.h): an entry's key is
  // CacheEntryPrefix() + the result cache key.
  std::string CacheEntryPrefix(std::string_view model) const {
    return prefix_ + ":cache:{" + std::string(model) + "}:e:";
  }
  std::string CacheLru(std::string_view model) const {
    return prefix_ + ":cache:{" + std::string(model) + "}:lru";
  }
  std::string CacheSizes(std::string_view model) const {
    return prefix_ + ":cache:{" + std::string(model) + "}:sizes";
  }
  // The carrier in flight for result cache key `key` (collapse_link.h), and
  // the list of other gateways' requests waiting for one: one hash tag.
  std::string CollapseCarrier(std::string_view key) const {
    return prefix_ + ":collapse:{" + std::string(key) + "}";
  }
  std::string CollapseWaiters(std::string_view key) const { return CollapseCarrier(key) + ":w"; }
  // A task of API key `owner`, and an Idempotency-Key of its (`key_hash`:
  // the key's SHA-256 in hex): one hash tag, the owner's.
  std::string Task(std::string_view owner, std::string_view id) const {
    return prefix_ + ":task:{" + std::string(owner) + "}:" + std::string(id);
  }
  std::string IdempotencyKey(std::string_view owner, std::string_view key_hash) const {
    return prefix_ + ":idem:{" + std::string(owner) + "}:" + std::string(key_hash);
  }
  // ResultChannel() up to the gateway id (the scripts append id and "}").
  std::string ResultChannelPrefix() const { return prefix_ + ":results:{"; }

 private:
  std::string Model(std::string_view model) const {
    return prefix_ + ":{" + std::string(model) + "}";
  }

  std::string prefix_;
};

// A request's member of its tier's ZSET (above): `deadline_us` clamped to
// 0 .. 10^16 - 1, zero-padded to 16 digits, "|", `id`. The scripts' member()
// (script_prelude.cc) writes the same.
std::string QueueMember(int64_t deadline_us, std::string_view id);

// The hash-tag part of shard `shard` of `model`'s queue: `model` itself for
// shard 0, "model|shard" after ('|' never appears in a model name, so no
// shard's tag is another model's).
std::string QueueShard(std::string_view model, size_t shard);
// The shard of a model's queue that holds request `id`: CRC16(id) mod
// `shards` (0 when shards <= 1) — the same in every gateway and worker.
size_t ShardOfRequest(std::string_view id, size_t shards);

// OK iff `name` can appear inside a hash tag and an entry prefix: non-empty,
// at most 200 bytes, no '{', '}', '|' or control characters. `what` names
// the field in the error (kInvalidArgument).
Status ValidateKeyPart(std::string_view what, std::string_view name);

}  // namespace sluice::redis
