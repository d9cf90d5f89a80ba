// RedisReaper: returns requests whose lease ran out (their worker died or
// hung) to their queue, or, after the retry budget, to the dead-letter list
// with a failure answer to the owning gateway (the client gets 502).
//
// One script call per model (scripts::Reap) handles up to max_per_call
// expired leases (one per claimed batch) atomically. Each request of a
// reaped lease that is not answered yet goes back to its tier ZSET
// with its original deadline and attempts + 1, and a wake token is pushed;
// once attempts would exceed max_retries it is moved to sluice:{m}:dead
// (newest first, LTRIM-capped at dead_letter_cap) and a failure result
// (ErrorCode::kBackendError, reason "worker_lost") is published to its
// gateway, grouped one message per gateway. Idempotent: running it from
// several processes at once is safe (each lease is reaped once), so every
// worker (or gateway) may run it on a timer, e.g. every lease_us / 4.
// Exactly-once answers are kept by the complete script: a late completion
// by the original worker is answered if no one answered first (and then
// removes the request from its queue if it waits re-queued); otherwise it
// is stale.
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive the reaper. Blocking: ReapOnce blocks for one round trip;
// ReapAsync never blocks.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

class RedisReaper {
 public:
  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;                      // key names (prefix)
    size_t tier_count = 3;              // as the queue clients; 1..64
    // Re-queues allowed per request after lost leases; beyond: dead letter.
    int max_retries = 2;
    // Requests looked at per script call (whole leases: at most one more
    // batch); >= 1.
    size_t max_per_call = 1'000;
    size_t dead_letter_cap = 10'000;  // dead letters kept per model; >= 1
    size_t wake_list_cap = 64;        // as RedisQueueClient; >= 1
    size_t queue_shards = 1;          // as RedisQueueClient: one call per shard; 1..64
  };

  struct Outcome {
    size_t requeued = 0;       // back in their queue
    size_t dead_lettered = 0;  // retry budget spent; gateway told
    size_t dropped = 0;        // failure answers with no gateway listening
    // Expired leases handled (the most in one shard).
    size_t scanned = 0;
  };
  using ReapDone = std::function<void(Result<Outcome>)>;

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisReaper>> Create(const Options& options);

  void ReapAsync(const std::string& model, ReapDone done);
  Result<Outcome> ReapOnce(const std::string& model);

 private:
  explicit RedisReaper(const Options& options) : options_(options) {}
  // The reap script's keys and arguments for one shard of `model`.
  void ScriptArgs(const std::string& model, size_t shard, std::vector<std::string>* keys,
                  std::vector<std::string>* args) const;

  const Options options_;
};

}  // namespace sluice::redis
