#include "redis/batch_claimer.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "redis/packed.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

using SteadyTime = std::chrono::steady_clock;

// Decodes request `id`'s entry (of `model`), claimed under `lease`, into
// `out`; an entry that cannot be decoded adds its id to `undecodable`. One
// that is gone (nil: answered since the claim, by a worker whose lease on it
// had been reaped) is left out: it has its answer, and its share of the
// lease is the reaper's.
void DecodeClaimed(const std::string& model, const std::string& id, const RedisReply& entry,
                   const std::string& lease, std::vector<WireRequest>* out,
                   std::vector<std::string>* undecodable) {
  if (entry.type == RedisReply::Type::kNil) return;
  Result<WireRequest> r = entry.type == RedisReply::Type::kString
                              ? DecodeEntry(entry.str, id, model)
                              : Result<WireRequest>(InvalidArgument("not a string"));
  if (!r.ok()) {
    undecodable->push_back(id);
    return;
  }
  out->push_back(std::move(r).value());
  out->back().lease = lease;
}

Result<RedisBatchClaimer::CompleteResult> ParseCompleteReply(const ReplyResult& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal("complete script: " + reply->str);
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 5) {
    return Internal("complete script: unexpected reply " + reply->DebugString());
  }
  RedisBatchClaimer::CompleteResult c;
  c.answered = static_cast<size_t>(e[0].AsInt().value_or(0));
  c.stale = static_cast<size_t>(e[1].AsInt().value_or(0));
  c.dropped = static_cast<size_t>(e[2].AsInt().value_or(0));
  c.messages = static_cast<size_t>(e[3].AsInt().value_or(0));
  for (const RedisReply& k : e[4].elements) {
    const int64_t position = k.AsInt().value_or(0);  // 1-based
    if (position >= 1) c.stale_positions.push_back(static_cast<size_t>(position - 1));
  }
  return c;
}

}  // namespace

Result<std::unique_ptr<RedisBatchClaimer>> RedisBatchClaimer::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("batch claimer: connection required");
  if (Status s = ValidateKeyPart("batch claimer: model", options.model); !s.ok()) return s;
  if (options.tiers.empty() || options.tiers.size() > 64) {
    return InvalidArgument("batch claimer: tiers must hold 1..64 tiers");
  }
  if (options.lease_us <= 0) return InvalidArgument("batch claimer: lease_us must be > 0");
  if (options.max_expired_per_claim < 1 || options.max_expired_per_claim > 4096) {
    return InvalidArgument("batch claimer: max_expired_per_claim must be in 1..4096");
  }
  if (options.inline_entries_max > 4096) {
    return InvalidArgument("batch claimer: inline_entries_max must be in 0..4096");
  }
  if (options.max_block_ms < 1) return InvalidArgument("batch claimer: max_block_ms must be >= 1");
  if (options.queue_shards < 1 || options.queue_shards > 64 ||
      options.home_shard >= options.queue_shards) {
    return InvalidArgument("batch claimer: queue_shards must be in 1..64, home_shard below it");
  }
  Result<std::unique_ptr<RedisClient>> wait =
      options.connection->NewBlockingClient("-wait", options.max_block_ms + 1'000);
  if (!wait.ok()) return wait.status();
  return std::unique_ptr<RedisBatchClaimer>(
      new RedisBatchClaimer(options, std::move(wait).value()));
}

RedisBatchClaimer::RedisBatchClaimer(const Options& options, std::unique_ptr<RedisClient> wait)
    : options_(options), wait_(std::move(wait)) {
  const KeySpace& k = options_.keys;
  for (size_t shard = 0; shard < options_.queue_shards; ++shard) {
    const std::string q = QueueShard(options_.model, shard);
    std::vector<std::string> claim = {k.Payloads(q), k.Leases(q), k.Wake(q)};
    std::vector<std::string> complete = {k.Payloads(q), k.Leases(q)};
    for (size_t t = 0; t < options_.tiers.size(); ++t) {
      claim.push_back(k.Queue(q, t));
      complete.push_back(k.Queue(q, t));
    }
    claim.push_back(k.Batches(q));
    complete.push_back(k.Batches(q));
    claim_keys_.push_back(std::move(claim));
    complete_keys_.push_back(std::move(complete));
  }
  for (const TierPolicy& tier : options_.tiers) {
    AppendDouble(static_cast<double>(tier.priority), &priorities_);
    sync_horizon_us_ =
        std::max(sync_horizon_us_, std::min(tier.latency_budget_us, tier.max_queue_age_us));
  }
  // Deadline keys come from the gateways' clocks, `now` from Redis's.
  sync_horizon_us_ += kClockSkewMarginUs;
}

Result<RedisBatchClaimer::Batch> RedisBatchClaimer::TryClaim(const ClaimOptions& claim) {
  if (claim.max_batch < 1 || claim.max_batch > 4096) {
    return InvalidArgument("claim: max_batch must be in 1..4096");
  }
  const size_t shards = options_.queue_shards;
  if (shards == 1) return TryClaimShard(0, claim);
  // The home shard first, then the others in turn: the first batch found is
  // taken. A shard whose master is unreachable is passed over (the others
  // keep being served); it is an error only when every shard failed.
  // Nothing anywhere: an empty batch with every shard's depth and the
  // shortest wait.
  std::optional<Batch> empty;
  Status first_error;
  for (size_t i = 0; i < shards; ++i) {
    Result<Batch> b = TryClaimShard((options_.home_shard + i) % shards, claim);
    if (!b.ok()) {
      if (first_error.ok()) first_error = b.status();
      continue;
    }
    if (!b->empty()) return b;
    if (!empty.has_value()) {
      empty = std::move(b).value();
      continue;
    }
    empty->depth += b->depth;
    if (b->wait_us > 0 && (empty->wait_us <= 0 || b->wait_us < empty->wait_us)) {
      empty->wait_us = b->wait_us;
    }
  }
  if (!empty.has_value()) return first_error;
  return std::move(*empty);
}

Result<RedisBatchClaimer::Batch> RedisBatchClaimer::TryClaimShard(size_t shard,
                                                                  const ClaimOptions& claim) {
  // One argument: the header and the tiers' priorities (scripts.h).
  std::vector<std::string> args(1);
  std::string& header = args[0];
  header.reserve(10 * 8 + priorities_.size());
  const size_t fill_to =
      std::clamp<size_t>(claim.async_fill_to.value_or(claim.max_batch), 1, claim.max_batch);
  for (const double v :
       {static_cast<double>(options_.tiers.size()), static_cast<double>(claim.max_batch),
        static_cast<double>(std::max<size_t>(claim.min_batch, 1)),
        static_cast<double>(std::max<int64_t>(claim.max_batch_delay_us, 0)),
        static_cast<double>(options_.lease_us),
        options_.ordering == QueueOrdering::kStrictPriority ? 1.0 : 0.0,
        static_cast<double>(options_.max_expired_per_claim),
        static_cast<double>(options_.inline_entries_max),
        claim.async_fill_to ? static_cast<double>(sync_horizon_us_) : 0.0,
        static_cast<double>(fill_to)}) {
    AppendDouble(v, &header);
  }
  header += priorities_;
  ReplyResult reply =
      options_.connection->CallScript(scripts::Claim(), claim_keys_[shard], std::move(args));
  counters_->claims.fetch_add(1, std::memory_order_relaxed);
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal("claim script: " + reply->str);
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 8 ||
      e[4].type != RedisReply::Type::kString || e[5].type != RedisReply::Type::kArray ||
      e[6].type != RedisReply::Type::kArray) {
    return Internal("claim script: unexpected reply " + reply->DebugString());
  }
  Batch batch;
  batch.lease.id = e[7].str;
  batch.lease.shard = shard;
  batch.server_now_us = e[0].AsInt().value_or(0);
  batch.depth = static_cast<size_t>(std::max<int64_t>(e[1].AsInt().value_or(0), 0));
  batch.wait_us = e[2].AsInt().value_or(0);
  batch.oldest_arrival_us = e[3].AsInt().value_or(0);
  std::vector<std::string> undecodable;
  const std::vector<RedisReply>& late = e[6].elements;
  // The leased ids; those not expired are claimed, with the entry the script
  // returned (by position) or none.
  struct Claimed {
    std::string id;
    const RedisReply* entry = nullptr;
  };
  std::vector<Claimed> claimed;
  {
    std::vector<Claimed> held;
    for (std::string_view rest = e[4].str; !rest.empty();) {
      const size_t bar = std::min(rest.find('|'), rest.size());
      held.push_back({std::string(rest.substr(0, bar)), nullptr});
      rest.remove_prefix(std::min(bar + 1, rest.size()));
    }
    const std::vector<RedisReply>& in = e[5].elements;
    for (size_t i = 0; i + 1 < in.size(); i += 2) {
      const int64_t at = in[i].AsInt().value_or(0);
      if (at < 1 || static_cast<size_t>(at) > held.size()) {
        return Internal("claim script: inline entry at " + std::to_string(at) + " of " +
                        std::to_string(held.size()));
      }
      held[at - 1].entry = &in[i + 1];
    }
    std::unordered_set<std::string_view> expired_ids;
    for (size_t i = 0; i + 1 < late.size(); i += 2) expired_ids.insert(late[i].str);
    claimed.reserve(held.size() - std::min(held.size(), expired_ids.size()));
    for (Claimed& c : held) {
      if (expired_ids.empty() || !expired_ids.contains(c.id)) claimed.push_back(std::move(c));
    }
  }
  // Entries the script left for this side to read (scripts.h): one HMGET,
  // tried twice (it changes nothing). If it still fails, the batch is what
  // came with the claim (its expired requests included) and the unread
  // requests wait for the reaper: their share of the lease keeps it from
  // being released, so it runs out.
  std::vector<std::string> argv = {"HMGET", claim_keys_[shard][0]};
  for (const Claimed& c : claimed) {
    if (c.entry == nullptr) argv.push_back(c.id);
  }
  std::optional<ReplyResult> read;
  Status read_failed;
  if (argv.size() > 2) {
    const size_t n = argv.size() - 2;
    for (int attempt = 0; attempt < 2; ++attempt) {
      read = options_.connection->Call(argv);
      if (!read->ok()) {
        read_failed = read->status();
      } else if ((*read)->type != RedisReply::Type::kArray || (*read)->elements.size() != n) {
        read_failed = Internal("claim: unexpected HMGET reply " + (*read)->DebugString());
      } else {
        read_failed = Status::Ok();
        break;
      }
    }
  }
  batch.requests.reserve(claimed.size());
  size_t next_read = 0;
  for (const Claimed& c : claimed) {
    if (c.entry != nullptr) {
      DecodeClaimed(options_.model, c.id, *c.entry, batch.lease.id, &batch.requests, &undecodable);
    } else if (read_failed.ok()) {
      DecodeClaimed(options_.model, c.id, (**read).elements[next_read++], batch.lease.id,
                    &batch.requests, &undecodable);
    }
  }
  for (size_t i = 0; i + 1 < late.size(); i += 2) {
    DecodeClaimed(options_.model, late[i].str, late[i + 1], batch.lease.id, &batch.expired,
                  &undecodable);
  }
  counters_->claimed.fetch_add(batch.requests.size(), std::memory_order_relaxed);
  counters_->expired.fetch_add(batch.expired.size(), std::memory_order_relaxed);
  if (!undecodable.empty()) {
    // Leased but unusable: answer them (500) so that no client waits for a
    // reaper that would only re-queue the same bytes.
    counters_->undecodable.fetch_add(undecodable.size(), std::memory_order_relaxed);
    std::vector<WireResult> failures;
    for (std::string& id : undecodable) {
      WireResult r;
      r.id = std::move(id);
      r.code = ErrorCode::kInternal;
      r.message = "queued request could not be decoded";
      r.reason = "bad_payload";
      r.lease = batch.lease.id;
      failures.push_back(std::move(r));
    }
    CompleteShardAsync(shard, failures, nullptr);
  }
  if (!read_failed.ok() && batch.empty()) return read_failed;
  return batch;
}

Result<RedisBatchClaimer::Batch> RedisBatchClaimer::Claim(const ClaimOptions& claim,
                                                          std::chrono::milliseconds timeout) {
  const auto deadline = SteadyTime::now() + timeout;
  const std::string wake_key = options_.keys.Wake(QueueShard(options_.model, options_.home_shard));
  // Each pass is one claim and at most one bounded BLPOP; the deadline ends
  // the loop, the pass cap only guards against a clock that stands still.
  for (int pass = 0; pass < 100'000; ++pass) {
    Result<Batch> batch = TryClaim(claim);
    if (!batch.ok() || !batch->empty()) return batch;
    const int64_t left_us =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - SteadyTime::now()).count();
    if (left_us <= 0) return batch;
    int64_t wait_us = std::min(left_us, options_.max_block_ms * 1000);
    if (batch->depth > 0 && batch->wait_us > 0) wait_us = std::min(wait_us, batch->wait_us);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.3f",
                  static_cast<double>(std::max<int64_t>(wait_us, 1'000)) / 1e6);
    ReplyResult woken = wait_->Call({"BLPOP", wake_key, seconds});
    if (!woken.ok()) return woken.status();
    if (woken->is_error()) return Internal("BLPOP: " + woken->str);
    if (!woken->is_nil()) counters_->wakeups.fetch_add(1, std::memory_order_relaxed);
  }
  return Batch{};
}

void RedisBatchClaimer::RenewAsync(const std::vector<Lease>& leases, RenewDone done) {
  // Chunks keep each script's unpack() far below Lua's stack limit (8,000).
  constexpr size_t kLeasesPerCall = 2'000;
  std::vector<std::vector<std::string>> by_shard(options_.queue_shards);
  size_t calls = 0;
  for (const Lease& lease : leases) {
    if (lease.id.empty() || lease.shard >= by_shard.size()) continue;
    std::vector<std::string>& ids = by_shard[lease.shard];
    if (ids.size() % kLeasesPerCall == 0) ++calls;
    ids.push_back(lease.id);
  }
  if (calls == 0) {
    if (done) done(int64_t{0});
    return;
  }
  struct Tally {
    std::mutex mu;
    size_t calls_left = 0;
    Result<int64_t> total = int64_t{0};
    RenewDone done;
  };
  auto tally = std::make_shared<Tally>();
  tally->calls_left = calls;
  tally->done = std::move(done);
  for (size_t shard = 0; shard < by_shard.size(); ++shard) {
    const std::vector<std::string>& ids = by_shard[shard];
    const std::string key = options_.keys.Leases(QueueShard(options_.model, shard));
    for (size_t at = 0; at < ids.size(); at += kLeasesPerCall) {
      const size_t end = std::min(ids.size(), at + kLeasesPerCall);
      std::vector<std::string> args;
      args.reserve(1 + end - at);
      args.push_back(std::to_string(options_.lease_us));
      args.insert(args.end(), ids.begin() + static_cast<ptrdiff_t>(at),
                  ids.begin() + static_cast<ptrdiff_t>(end));
      options_.connection->RunScript(
          scripts::Renew(), {key}, std::move(args), [tally](ReplyResult reply) {
            reply = ExpectNoError(std::move(reply), "renew");
            std::optional<int64_t> n = reply.ok() ? reply->AsInt() : std::nullopt;
            std::lock_guard lock(tally->mu);
            if (tally->total.ok()) {
              if (!reply.ok()) {
                tally->total = reply.status();
              } else if (!n) {
                tally->total = Internal("renew: " + reply->DebugString());
              } else {
                tally->total = *tally->total + *n;
              }
            }
            if (--tally->calls_left == 0 && tally->done) tally->done(std::move(tally->total));
          });
    }
  }
}

void RedisBatchClaimer::CompleteAsync(const std::vector<WireResult>& results, CompleteDone done) {
  if (results.empty()) {
    if (done) done(CompleteResult{});
    return;
  }
  // The complete script takes each id once per call (scripts.h): a repeat
  // is a later answer (in `results` order) for a request this call answers
  // already, so it is stale, and is counted so here once the call succeeds.
  std::vector<size_t> repeats;
  {
    std::unordered_set<std::string_view> seen;
    seen.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (!seen.insert(results[i].id).second) repeats.push_back(i);
    }
  }
  if (!repeats.empty()) {
    std::vector<WireResult> distinct;
    std::vector<size_t> kept;  // index in `results` of each of `distinct`
    distinct.reserve(results.size() - repeats.size());
    for (size_t i = 0, r = 0; i < results.size(); ++i) {
      if (r < repeats.size() && repeats[r] == i) {
        ++r;
        continue;
      }
      distinct.push_back(results[i]);
      kept.push_back(i);
    }
    CompleteAsync(distinct, [counters = counters_, done = std::move(done), kept = std::move(kept),
                             repeats = std::move(repeats)](Result<CompleteResult> r) {
      if (r.ok()) {
        for (size_t& k : r->stale_positions) k = k < kept.size() ? kept[k] : k;
        r->stale += repeats.size();
        r->stale_positions.insert(r->stale_positions.end(), repeats.begin(), repeats.end());
        std::sort(r->stale_positions.begin(), r->stale_positions.end());
        counters->stale.fetch_add(repeats.size(), std::memory_order_relaxed);
      }
      if (done) done(std::move(r));
    });
    return;
  }
  const size_t shards = options_.queue_shards;
  if (shards == 1) {
    CompleteShardAsync(0, results, std::move(done));
    return;
  }
  // One call per shard; the answers merged (stale positions mapped back).
  std::vector<std::vector<WireResult>> parts(shards);
  std::vector<std::vector<size_t>> positions(shards);
  for (size_t i = 0; i < results.size(); ++i) {
    const size_t shard = ShardOfRequest(results[i].id, shards);
    parts[shard].push_back(results[i]);
    positions[shard].push_back(i);
  }
  struct Merge {
    std::mutex mu;
    size_t left = 0;
    Result<CompleteResult> total = CompleteResult{};
    CompleteDone done;
  };
  auto merge = std::make_shared<Merge>();
  merge->done = std::move(done);
  for (const auto& part : parts) merge->left += part.empty() ? 0 : 1;
  for (size_t shard = 0; shard < shards; ++shard) {
    if (parts[shard].empty()) continue;
    CompleteShardAsync(shard, parts[shard],
                       [merge, at = std::move(positions[shard])](Result<CompleteResult> r) {
                         std::lock_guard lock(merge->mu);
                         if (merge->total.ok() && !r.ok()) merge->total = r.status();
                         if (merge->total.ok()) {
                           merge->total->answered += r->answered;
                           merge->total->stale += r->stale;
                           merge->total->dropped += r->dropped;
                           merge->total->messages += r->messages;
                           for (size_t k : r->stale_positions) {
                             if (k < at.size()) merge->total->stale_positions.push_back(at[k]);
                           }
                         }
                         if (--merge->left == 0 && merge->done) {
                           merge->done(std::move(merge->total));
                         }
                       });
  }
}

void RedisBatchClaimer::CompleteShardAsync(size_t shard, const std::vector<WireResult>& results,
                                           CompleteDone done) {
  std::vector<std::string> keys = complete_keys_[shard];
  // Token settlements the script cannot make (Redis Cluster: the limits
  // live in other slots): made with the limiter once the reply says which
  // completions were live.
  struct Settlement {
    size_t position;
    std::string key_id;
    int64_t tokens_per_minute, charged, used;
  };
  auto separate = std::make_shared<std::vector<Settlement>>();
  // The results grouped by (owner gateway, lease, first attempt), groups in
  // order of first appearance; `order` maps the script's numbering to
  // indices in `results`.
  std::map<std::tuple<std::string_view, std::string_view, bool>, std::vector<size_t>> by_group;
  std::vector<const std::vector<size_t>*> groups;
  for (size_t i = 0; i < results.size(); ++i) {
    auto [it, added] = by_group.try_emplace(
        {results[i].owner_gateway_id, results[i].lease, results[i].first_attempt});
    if (added) groups.push_back(&it->second);
    it->second.push_back(i);
  }
  auto order = std::make_shared<std::vector<size_t>>();
  order->reserve(results.size());
  std::vector<std::string> args = {std::to_string(options_.tiers.size()),
                                   options_.keys.ResultChannelPrefix(),
                                   std::to_string(groups.size())};
  args.reserve(4 + 6 * groups.size() + results.size());
  std::vector<std::string> settlements;  // position, key id, tpm, delta
  for (const std::vector<size_t>* group : groups) {
    const WireResult& head = results[group->front()];
    args.push_back(head.owner_gateway_id);
    args.push_back(head.lease);
    args.push_back(head.first_attempt ? "1" : "0");
    args.push_back(std::to_string(group->size()));
    // The group's message as its gateway reads it (a JSON array), and each
    // result's length in it (little-endian uint32), so that the script can
    // publish it as it is, or cut out the live results.
    std::string message = "[";
    std::string lengths;
    lengths.reserve(4 * group->size());
    for (const size_t i : *group) {
      if (message.size() > 1) message.push_back(',');
      const std::string encoded = EncodeResult(results[i]);
      message += encoded;
      AppendUint32(static_cast<uint32_t>(encoded.size()), &lengths);
    }
    message.push_back(']');
    args.push_back(std::move(message));
    args.push_back(std::move(lengths));
    for (const size_t i : *group) {
      const WireResult& r = results[i];
      order->push_back(i);
      args.push_back(r.id);
      const int64_t used = r.code == ErrorCode::kOk ? r.tokens_used : 0;
      const bool settle = !r.charged_key_id.empty() && r.tokens_per_minute > 0 &&
                          ValidateKeyPart("key", r.charged_key_id).ok();
      if (!settle) continue;
      if (options_.separate_limiter != nullptr) {
        separate->push_back(
            Settlement{i, r.charged_key_id, r.tokens_per_minute, r.charged_tokens, used});
        continue;
      }
      if (used == r.charged_tokens) continue;
      settlements.push_back(std::to_string(order->size()));
      settlements.push_back(r.charged_key_id);
      settlements.push_back(std::to_string(r.tokens_per_minute));
      settlements.push_back(std::to_string(used - r.charged_tokens));
    }
  }
  if (!settlements.empty()) keys.push_back(options_.keys.RateLimits());
  args.push_back(std::to_string(settlements.size() / 4));
  args.insert(args.end(), std::make_move_iterator(settlements.begin()),
              std::make_move_iterator(settlements.end()));
  options_.connection->RunScript(
      scripts::Complete(), std::move(keys), std::move(args),
      [counters = counters_, limiter = options_.separate_limiter, separate, order,
       done = std::move(done)](ReplyResult reply) {
        Result<CompleteResult> parsed = ParseCompleteReply(reply);
        if (parsed.ok()) {
          // The script numbers results in argument order: back to `results`'.
          for (size_t& k : parsed->stale_positions) k = k < order->size() ? (*order)[k] : k;
          std::sort(parsed->stale_positions.begin(), parsed->stale_positions.end());
          counters->stale.fetch_add(parsed->stale, std::memory_order_relaxed);
          counters->dropped.fetch_add(parsed->dropped, std::memory_order_relaxed);
          std::vector<RedisRateLimiter::Settlement> live;
          for (const Settlement& s : *separate) {
            if (std::find(parsed->stale_positions.begin(), parsed->stale_positions.end(),
                          s.position) != parsed->stale_positions.end()) {
              continue;  // settled by whoever answered it first
            }
            live.push_back({s.key_id, s.tokens_per_minute, s.charged, s.used});
          }
          if (!live.empty()) limiter->ReconcileBatch(live);
        }
        if (done) done(std::move(parsed));
      });
}

Result<RedisBatchClaimer::CompleteResult> RedisBatchClaimer::Complete(
    const std::vector<WireResult>& results) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<CompleteResult>> result;
  };
  auto slot = std::make_shared<Slot>();
  CompleteAsync(results, [slot](Result<CompleteResult> r) {
    std::lock_guard lock(slot->mu);
    slot->result.emplace(std::move(r));
    slot->cv.notify_all();
  });
  const std::chrono::milliseconds limit = options_.connection->reply_wait_limit();
  std::unique_lock lock(slot->mu);
  if (!slot->cv.wait_for(lock, limit, [&] { return slot->result.has_value(); })) {
    return Unavailable("complete: no reply within " + std::to_string(limit.count()) + " ms");
  }
  return std::move(*slot->result);
}

RedisBatchClaimer::Stats RedisBatchClaimer::stats() const {
  Stats s;
  s.claims = counters_->claims.load(std::memory_order_relaxed);
  s.claimed = counters_->claimed.load(std::memory_order_relaxed);
  s.expired = counters_->expired.load(std::memory_order_relaxed);
  s.wakeups = counters_->wakeups.load(std::memory_order_relaxed);
  s.stale_results = counters_->stale.load(std::memory_order_relaxed);
  s.dropped_results = counters_->dropped.load(std::memory_order_relaxed);
  s.undecodable = counters_->undecodable.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice::redis
