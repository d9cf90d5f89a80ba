// RedisBatchClaimer: a worker's side of the Redis request queue — claim a
// whole batch in one atomic script call, block without polling while the
// queue is empty, and complete the batch in one call that answers each
// request exactly once.
//
// Claim. One EVALSHA pops up to max_batch ids across the model's tier
// ZSETs in queue order (EDF with tier-priority tiebreak, or strict
// priority) and leases them as one batch (one lease per claim, not per
// request: Batch::lease). It returns the payloads of a small batch; those
// of a larger one are read with one HMGET after it, outside the script,
// where reading them would cost Redis more than the rest of the claim
// (Options::inline_entries_max, per round of the script's merge). If that
// read fails twice, the batch is what came with the claim (expired ones
// included) and the unread requests stay leased until the reaper re-queues
// them; with nothing to hand out, the claim fails.
// Entries whose dispatch deadline passed are returned separately (and do not
// count toward max_batch); they are leased too, so they must be completed
// (with a 504) like the others. Wait-or-full: with min_batch > 1 the script
// claims nothing while fewer are queued and the oldest head has waited less
// than max_batch_delay_us, and says how long to wait.
//
// Blocking without polling. The enqueue script LPUSHes a token to a
// per-model wake list (LTRIM-capped); when there is nothing to claim, the
// claimer BLPOPs that list on its OWN connection (a blocking command would
// hold a shared pipeline) for at most the remaining wait, and claims again
// when woken: a new request reaches a blocked worker in about one round
// trip. Not BZPOPMIN: it pops one member of one ZSET, outside any lease (a
// crash between pop and lease loses the request), and cannot merge tier
// ZSETs by deadline; the wake list keeps the claim a single atomic script.
//
// Complete. One EVALSHA per batch deletes each id's entry (and its queue
// member, if its lease was reaped and it waits re-queued) and answers only
// those whose entry was still there: a request retried after a reaper gets
// one answer, from whichever worker completes first; later completions
// count as stale. A lease is released with the last answer that names it
// (WireResult::lease). The
// answers are published as ONE message per owning gateway (result JSON
// array on sluice:results:{gateway_id}); answers to a gateway with no
// subscriber are dropped and counted (on Redis Cluster PUBLISH counts only
// the subscribers of the node that ran it, so `dropped` is an upper bound
// there).
//
// Commands per batch on the worker path: one claim EVALSHA (and one HMGET
// for a large batch; a BLPOP while idle) and one complete EVALSHA, whatever the batch size; and one
// renew EVALSHA per lease_us / 4 for the leases a worker holds. With queue
// shards (Options::queue_shards), each of those is one call per shard
// involved: a claim tries the shards in turn until one yields a batch.
//
// Thread-safety: Claim() is for one thread at a time (it owns the wait
// connection); Complete()/CompleteAsync() and stats are thread-safe.
// Ownership: `connection` (scripts) is shared and not owned; the wait
// connection is owned. Blocking: Claim() blocks up to its timeout;
// CompleteAsync never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/request_queue.h"
#include "core/tier.h"
#include "redis/client.h"
#include "redis/keys.h"
#include "redis/redis_rate_limiter.h"
#include "redis/request_codec.h"

namespace sluice::redis {

class RedisBatchClaimer {
 public:
  // How far a gateway's clock may run ahead of Redis's before a fresh
  // synchronous request could be taken for asynchronous work
  // (ClaimOptions::async_fill_to).
  static constexpr int64_t kClockSkewMarginUs = 1'000'000;

  struct Options {
    // Runs the claim and complete scripts; required; not owned; may be
    // shared by every claimer of the process.
    RedisClient* connection = nullptr;
    KeySpace keys;      // key names (prefix)
    std::string model;  // the model whose queue this claimer serves
    // The tier table (priorities), identical to the gateways'; non-empty.
    std::vector<TierPolicy> tiers;
    QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst;
    // How long a claimed batch stays leased; a lease that runs out is reaped
    // (retried). Longer than the slowest batch (backend timeout + margin).
    int64_t lease_us = 10'000'000;
    // Expired entries reported per claim at most (they are cleared in
    // chunks, so an overdue backlog cannot make one script call long).
    size_t max_expired_per_claim = 256;
    // A round of the claim script's merge that takes at most this many
    // requests returns their payloads (a claim usually is one round); a
    // larger one leaves them to one HMGET after it, outside the script
    // (copying a few through Lua costs Redis less than a second round
    // trip's I/O). 0..4096.
    size_t inline_entries_max = 8;
    // Longest single BLPOP; the wait connection's command timeout is set to
    // this + 1 s. >= 1.
    int64_t max_block_ms = 1'000;
    // Redis Cluster: settle token charges with this limiter (a
    // RedisRateLimiter on the same cluster) after the complete call, whose
    // script cannot reach the limits' slots; null = in the script. Not owned.
    RedisRateLimiter* separate_limiter = nullptr;
    // Shards of the model's queue (keys.h), as the gateways'; 1..64. A claim
    // tries `home_shard` first and then the others in turn; Claim() blocks
    // on the home shard's wake list. Completions and renewals go to each
    // request's shard. Spread workers' home shards so each shard has one.
    size_t queue_shards = 1;
    size_t home_shard = 0;  // < queue_shards
  };

  struct ClaimOptions {
    size_t max_batch = 32;  // 1..4096
    // Claim nothing while fewer than this are queued and the oldest queued
    // request arrived less than max_batch_delay_us ago. 1 = claim at once.
    size_t min_batch = 1;
    int64_t max_batch_delay_us = 0;
    // Asynchronous fill: when set, queued requests due later than the
    // longest synchronous budget of any tier (min of latency_budget_us and
    // max_queue_age_us) plus kClockSkewMarginUs from Redis's now are
    // asynchronous work (no synchronous request is due that late while the
    // gateways' clocks are within the margin of Redis's); they are taken only
    // while fewer than this many (clamped to 1..max_batch) are claimed, the
    // others up to max_batch. An asynchronous request due sooner is taken
    // like a synchronous one. Unset: every request alike.
    std::optional<size_t> async_fill_to;
  };

  // One claimed batch's lease: its name and the queue shard it lives in.
  struct Lease {
    std::string id;
    size_t shard = 0;
  };

  struct Batch {
    std::vector<WireRequest> requests;  // leased, in queue order
    std::vector<WireRequest> expired;   // leased; answer with 504
    // The lease of both (each request's WireRequest::lease); empty id when
    // nothing was claimed (a claim whose every entry was undecodable has a
    // lease, answered by the claimer itself).
    Lease lease;
    size_t depth = 0;               // still queued after the claim
    int64_t oldest_arrival_us = 0;  // among the tier heads while waiting (wait_us > 0); else 0
    int64_t server_now_us = 0;
    // > 0 when nothing was claimed because the batch is still filling: how
    // long until the claim would take what is there.
    int64_t wait_us = 0;
    bool empty() const { return requests.empty() && expired.empty(); }
  };

  struct CompleteResult {
    size_t answered = 0;  // published to their gateways (or dropped: below)
    size_t stale = 0;     // already answered elsewhere (reaped, retried)
    size_t dropped = 0;   // answered, but their gateway had no subscriber
    size_t messages = 0;  // PUBLISH calls (one per gateway and lease, at most)
    // Indices into the completed results of the stale ones.
    std::vector<size_t> stale_positions;
  };
  using CompleteDone = std::function<void(Result<CompleteResult>)>;

  struct Stats {
    uint64_t claims = 0;           // claim script calls
    uint64_t claimed = 0;          // requests claimed
    uint64_t expired = 0;          // expired requests reported
    uint64_t wakeups = 0;          // BLPOPs that returned a token
    uint64_t stale_results = 0;    // completions of already answered ids
    uint64_t dropped_results = 0;  // results for gateways that were gone
    uint64_t undecodable = 0;      // payloads that failed to decode (completed as 500)
  };

  // Creates the wait connection. Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisBatchClaimer>> Create(const Options& options);

  // One claim attempt, never waits (one round trip per shard tried; with
  // shards, an unreachable shard is skipped: an error only when all are).
  Result<Batch> TryClaim(const ClaimOptions& claim);

  // Claims, and while there is nothing to claim blocks on the wake list
  // (bounded by `timeout`, by wait_us and by max_block_ms per BLPOP),
  // claiming again after each wake-up. Returns an empty batch at the
  // timeout. Errors: kUnavailable (Redis down, at once), kInternal.
  Result<Batch> Claim(const ClaimOptions& claim, std::chrono::milliseconds timeout);

  // Extends `leases` (batches claimed, not all answered yet) to lease_us
  // from now, in one script call per shard. A worker renews what it holds
  // every lease_us / 4, so a lease runs out only when this worker is gone
  // (or cut off from Redis), however long the batch takes. Leases no longer
  // held (released with their last answer, or reaped) are left alone.
  // `done` (may be null) gets how many leases were extended; it runs on the
  // connection's thread (inline when down).
  using RenewDone = std::function<void(Result<int64_t>)>;
  void RenewAsync(const std::vector<Lease>& leases, RenewDone done);

  // Answers a claimed (or expired) batch: one script call per shard (the
  // merged result fails when any call failed), one message per
  // gateway. `done` runs on the connection's thread (inline when down).
  void CompleteAsync(const std::vector<WireResult>& results, CompleteDone done);
  // Blocking form (one round trip).
  Result<CompleteResult> Complete(const std::vector<WireResult>& results);

  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  struct Counters {
    std::atomic<uint64_t> claims{0}, claimed{0}, expired{0}, wakeups{0}, stale{0}, dropped{0},
        undecodable{0};
  };

  RedisBatchClaimer(const Options& options, std::unique_ptr<RedisClient> wait);
  Result<Batch> TryClaimShard(size_t shard, const ClaimOptions& claim);
  void CompleteShardAsync(size_t shard, const std::vector<WireResult>& results, CompleteDone done);

  const Options options_;
  std::unique_ptr<RedisClient> wait_;                    // BLPOP only
  std::vector<std::vector<std::string>> claim_keys_;     // by shard
  std::vector<std::vector<std::string>> complete_keys_;  // by shard
  std::string priorities_;  // the claim script's header tail: each tier's, packed
  // The longest synchronous queue budget of any tier (ClaimOptions::async_fill_to).
  int64_t sync_horizon_us_ = 0;
  // Shared with pending completion callbacks.
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

}  // namespace sluice::redis
