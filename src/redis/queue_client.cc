#include "redis/queue_client.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "redis/packed.h"
#include "redis/redis_rate_limiter.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

enum EnqueueStatus { kQueued = 0, kDuplicate = 1, kRateLimited = 2, kFull = 3, kBadTier = 4 };

// One item's numbers in the enqueue script's `meta` argument: tier (1 byte),
// tier depth limit and rate-limit index (4 bytes each, unsigned), what it
// adds to its key's request and token TATs (IEEE doubles:
// RequestIncrementUs(), TokenIncrementUs()), all little-endian.
constexpr size_t kMetaBytes = 1 + 4 + 4 + 8 + 8;

void AppendMeta(uint32_t tier, size_t tier_depth_limit, size_t limit_index,
                double request_increment, double token_increment, std::string* out) {
  constexpr uint64_t kMaxU32 = 0xffff'ffff;
  AppendLittleEndian(std::min<uint64_t>(tier, 0xff), 1, out);
  AppendLittleEndian(std::min<uint64_t>(tier_depth_limit, kMaxU32), 4, out);
  AppendLittleEndian(std::min<uint64_t>(limit_index, kMaxU32), 4, out);
  AppendDouble(request_increment, out);
  AppendDouble(token_increment, out);
}

// The little-endian double at `at` of `packed` (a TAT in epoch µs, as the
// scripts store it), as whole µs; 0 when it is not finite or out of range.
int64_t ReadDoubleAsUs(const std::string& packed, size_t at) {
  uint64_t bits = 0;
  for (size_t i = 0; i < 8; ++i) {
    bits |= static_cast<uint64_t>(static_cast<unsigned char>(packed[at + i])) << (8 * i);
  }
  const double v = std::bit_cast<double>(bits);
  constexpr double kLimit = 9.2e18;  // inside int64's range
  if (!std::isfinite(v) || v <= -kLimit || v >= kLimit) return 0;
  return static_cast<int64_t>(v);
}

// The limit an item is checked against, or nullopt when it has none (an
// unlimited policy needs no state: no key, no slot).
std::optional<RedisQueueClient::RateLimitCheck> EffectiveLimit(
    const RedisQueueClient::EnqueueOptions& o) {
  if (!o.rate_limit.has_value()) return std::nullopt;
  if (o.rate_limit->policy.requests_per_minute == 0 && o.rate_limit->policy.tokens_per_minute == 0)
    return std::nullopt;
  return o.rate_limit;
}

// A key's rate-limit state in the enqueue script: the two TATs (epoch µs).
struct KeyState {
  int64_t requests_tat_us = 0;
  int64_t tokens_tat_us = 0;
};

// units_to_us() of the scripts (gcra.h in µs): floor(units * 60 s / limit),
// capped at four windows. REQUIRES: limit > 0, units >= 0.
int64_t UnitsToUs(int64_t units, int64_t limit) {
  constexpr int64_t kWindowUs = 60'000'000;
  const __int128 us = static_cast<__int128>(units) * kWindowUs / limit;
  return static_cast<int64_t>(std::min<__int128>(us, 4 * kWindowUs));
}

// What a queued item's check did to its key's state (rate_try() in the
// scripts, with the key's policy: its first item's).
void Consume(const RateLimitPolicy& policy, int64_t tokens, int64_t now_us, KeyState* s) {
  if (policy.requests_per_minute > 0) {
    s->requests_tat_us =
        std::max(s->requests_tat_us, now_us) + UnitsToUs(1, policy.requests_per_minute);
  }
  if (policy.tokens_per_minute > 0) {
    s->tokens_tat_us =
        std::max(s->tokens_tat_us, now_us) + UnitsToUs(tokens, policy.tokens_per_minute);
  }
}

// What the enqueue script adds to a key's TATs (scripts.h): per request
// and per item's tokens, in µs; -1 where the policy has no such limit,
// +inf where the item can never fit.
double RequestIncrementUs(const RateLimitPolicy& policy) {
  if (policy.requests_per_minute <= 0) return -1;
  return static_cast<double>(UnitsToUs(1, policy.requests_per_minute));
}
double TokenIncrementUs(const RateLimitPolicy& policy, int64_t tokens) {
  if (policy.tokens_per_minute <= 0) return -1;
  if (tokens > policy.tokens_per_minute) return std::numeric_limits<double>::infinity();
  return static_cast<double>(UnitsToUs(tokens, policy.tokens_per_minute));
}

// The answer for one item from its status and its key's state before its
// check (scripts.h).
RedisQueueClient::EnqueueResult ItemResult(const RedisQueueClient::EnqueueOptions& options,
                                           size_t depth, int64_t now_us, int status,
                                           const KeyState& before) {
  RedisQueueClient::EnqueueResult out;
  out.depth = depth;
  out.server_now_us = now_us;
  const std::optional<RedisQueueClient::RateLimitCheck> limit = EffectiveLimit(options);
  if (limit.has_value() && status != kDuplicate && status != kBadTier) {
    out.rate_limit = DecisionFromScript(limit->policy, limit->tokens, status != kRateLimited,
                                        now_us, before.requests_tat_us, before.tokens_tat_us);
  } else if (options.rate_limit.has_value() && !limit.has_value()) {
    RateLimitDecision d;  // unlimited: allowed, with the cost for the log
    d.token_cost = options.rate_limit->tokens;
    out.rate_limit = d;
  }
  switch (status) {
    case kQueued:
      break;
    case kDuplicate:
      out.status = InvalidArgument("request id already queued");
      break;
    case kRateLimited:
      out.status = RateLimitStatus(*out.rate_limit);
      break;
    case kFull:
      out.queue_full = true;
      out.status = Unavailable("queue full (" + std::to_string(depth) + " queued)");
      break;
    case kBadTier:
      out.status = InvalidArgument("tier out of range");
      break;
    default:
      out.status = Internal("enqueue script: unknown status " + std::to_string(status));
  }
  return out;
}

Status ValidateItem(const RedisQueueClient::EnqueueItem& item, const std::string& model,
                    size_t tier_count) {
  const WireRequest& r = item.request;
  if (r.model != model)
    return InvalidArgument("model: every request of a batch must be for '" + model + "'");
  if (Status s = ValidateKeyPart("gateway_id", r.gateway_id); !s.ok()) return s;
  if (r.id.empty()) return InvalidArgument("request id: must not be empty");
  // A lease lists its ids joined by '|' (keys.h).
  if (Status s = ValidateKeyPart("request id", r.id); !s.ok()) return s;
  if (r.tier >= tier_count)
    return InvalidArgument("tier " + std::to_string(r.tier) + " out of range");
  if (item.options.rate_limit.has_value()) {
    const RedisQueueClient::RateLimitCheck& rl = *item.options.rate_limit;
    return ValidateRateLimitArgs(rl.key_id, rl.policy, rl.tokens);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<RedisQueueClient>> RedisQueueClient::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("redis queue: connection required");
  if (options.tier_count < 1 || options.tier_count > 64) {
    return InvalidArgument("redis queue: tier_count must be in 1..64");
  }
  if (options.wake_list_cap < 1) return InvalidArgument("redis queue: wake_list_cap must be >= 1");
  if (options.queue_shards < 1 || options.queue_shards > 64) {
    return InvalidArgument("redis queue: queue_shards must be in 1..64");
  }
  return std::unique_ptr<RedisQueueClient>(new RedisQueueClient(options));
}

void RedisQueueClient::WithdrawAsync(const std::string& model, std::vector<std::string> ids,
                                     WithdrawDone done) {
  if (Status s = ValidateKeyPart("model", model); !s.ok()) {
    done(s);
    return;
  }
  std::map<size_t, std::vector<std::string>> by_shard;
  for (std::string& id : ids) {
    by_shard[ShardOfRequest(id, options_.queue_shards)].push_back(std::move(id));
  }
  if (by_shard.empty()) {
    done(std::vector<std::string>{});
    return;
  }
  struct Tally {
    std::mutex mu;
    size_t left = 0;
    Result<std::vector<std::string>> removed = std::vector<std::string>{};
    WithdrawDone done;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = by_shard.size();
  tally->done = std::move(done);
  const KeySpace& k = options_.keys;
  for (auto& [shard, shard_ids] : by_shard) {
    const std::string q = QueueShard(model, shard);
    std::vector<std::string> keys = {k.Payloads(q)};
    for (size_t t = 0; t < options_.tier_count; ++t) keys.push_back(k.Queue(q, t));
    std::vector<std::string> args = {std::to_string(options_.tier_count)};
    for (std::string& id : shard_ids) args.push_back(std::move(id));
    options_.connection->RunScript(
        scripts::Withdraw(), std::move(keys), std::move(args), [tally](ReplyResult reply) {
          std::lock_guard lock(tally->mu);
          if (tally->removed.ok()) {
            if (!reply.ok()) {
              tally->removed = reply.status();
            } else if (reply->is_error()) {
              tally->removed = Internal("withdraw script: " + reply->str);
            } else {
              for (const RedisReply& e : reply->elements) tally->removed->push_back(e.str);
            }
          }
          if (--tally->left == 0) tally->done(std::move(tally->removed));
        });
  }
}

void RedisQueueClient::Enqueue(const WireRequest& request, const EnqueueOptions& enqueue,
                               EnqueueDone done) {
  std::vector<EnqueueItem> items;
  items.push_back(EnqueueItem{request, enqueue, std::move(done)});
  EnqueueBatch(std::move(items));
}

void RedisQueueClient::EnqueueBatch(std::vector<EnqueueItem> items) {
  if (items.empty()) return;
  const std::string model = items.front().request.model;
  std::vector<EnqueueItem> valid;
  valid.reserve(items.size());
  Status model_ok = ValidateKeyPart("model", model);
  for (EnqueueItem& item : items) {
    Status s = model_ok.ok() ? ValidateItem(item, model, options_.tier_count) : model_ok;
    if (s.ok()) {
      valid.push_back(std::move(item));
      continue;
    }
    EnqueueResult r;
    r.status = std::move(s);
    item.done(std::move(r));
  }
  if (options_.separate_limiter != nullptr) {
    CheckThenSend(model, std::move(valid));
  } else {
    SendChunks(options_, model, std::move(valid));
  }
}

void RedisQueueClient::CheckThenSend(const std::string& model, std::vector<EnqueueItem> items) {
  struct Round {
    std::vector<EnqueueItem> items;
    std::vector<std::optional<Result<RateLimitDecision>>> decisions;  // by item; set when checked
  };
  auto round = std::make_shared<Round>();
  round->items = std::move(items);
  round->decisions.resize(round->items.size());
  std::vector<size_t> checked;
  for (size_t i = 0; i < round->items.size(); ++i) {
    if (EffectiveLimit(round->items[i].options).has_value()) checked.push_back(i);
  }
  // Runs once every check has answered: answers the rejected, sends the rest.
  // Captures a copy of the options, not the client: it may run after the
  // client is gone (the connection outlives it).
  auto finish = [options = options_, model, round] {
    std::vector<EnqueueItem> send;
    send.reserve(round->items.size());
    for (size_t i = 0; i < round->items.size(); ++i) {
      EnqueueItem& item = round->items[i];
      const std::optional<Result<RateLimitDecision>>& checked_d = round->decisions[i];
      if (!checked_d.has_value()) {
        send.push_back(std::move(item));
        continue;
      }
      if (!checked_d->ok()) {  // the limit's node is unreachable: 503, as for the queue's
        EnqueueResult r;
        r.status = checked_d->status();
        item.done(std::move(r));
        continue;
      }
      const RateLimitDecision& d = checked_d->value();
      if (!d.allowed) {
        EnqueueResult r;
        r.status = RateLimitStatus(d);
        r.rate_limit = d;
        item.done(std::move(r));
        continue;
      }
      // Allowed and charged: enqueue without the combined check; a refusal
      // by the queue gives the tokens back.
      RateLimitCheck limit = *item.options.rate_limit;
      item.options.rate_limit.reset();
      item.done = [limiter = options.separate_limiter, limit, decision = d,
                   inner = std::move(item.done)](EnqueueResult r) {
        r.rate_limit = decision;
        if (!r.status.ok()) limiter->Reconcile(limit.key_id, limit.policy, limit.tokens, 0);
        inner(std::move(r));
      };
      send.push_back(std::move(item));
    }
    SendChunks(options, model, std::move(send));
  };
  if (checked.empty()) {
    finish();
    return;
  }
  // One batch: one call per slot the keys' states live in.
  std::vector<RedisRateLimiter::BatchCheck> checks;
  for (const size_t i : checked) {
    const RateLimitCheck& limit = *round->items[i].options.rate_limit;
    checks.push_back({limit.key_id, limit.policy, limit.tokens});
  }
  options_.separate_limiter->CheckBatchAsync(
      std::move(checks),
      [round, checked = std::move(checked), finish](std::vector<Result<RateLimitDecision>> d) {
        for (size_t k = 0; k < checked.size(); ++k) round->decisions[checked[k]] = std::move(d[k]);
        finish();
      });
}

void RedisQueueClient::SendChunks(const Options& options, const std::string& model,
                                  std::vector<EnqueueItem> valid) {
  std::map<size_t, std::vector<EnqueueItem>> by_shard;  // in arrival order within each
  for (EnqueueItem& item : valid) {
    by_shard[ShardOfRequest(item.request.id, options.queue_shards)].push_back(std::move(item));
  }
  for (auto& [shard, items] : by_shard) {
    for (size_t at = 0; at < items.size(); at += kMaxItemsPerCall) {
      const size_t end = std::min(items.size(), at + kMaxItemsPerCall);
      auto chunk = std::make_shared<std::vector<EnqueueItem>>(
          std::make_move_iterator(items.begin() + static_cast<ptrdiff_t>(at)),
          std::make_move_iterator(items.begin() + static_cast<ptrdiff_t>(end)));
      SendChunk(options, model, shard, std::move(chunk));
    }
  }
}

void RedisQueueClient::SendChunk(const Options& options, const std::string& model, size_t shard,
                                 std::shared_ptr<std::vector<EnqueueItem>> items) {
  const KeySpace& k = options.keys;
  const std::string q = QueueShard(model, shard);
  std::vector<std::string> keys = {k.Payloads(q), k.Wake(q)};
  for (size_t t = 0; t < options.tier_count; ++t) keys.push_back(k.Queue(q, t));
  // Bounds are split evenly over the shards (rounded up; 0 = none).
  const size_t shards = options.queue_shards;
  auto per_shard = [shards](size_t bound) { return (bound + shards - 1) / shards; };
  // The script takes a call's ids to be distinct (scripts.h): a repeat is
  // not sent, and is answered in its place among the call's answers as its
  // first copy was, or as a duplicate of it when that was queued.
  // first_copy[i]: the index of item i's first copy (i itself for a first
  // copy); null when nothing repeats, the common case.
  std::shared_ptr<std::vector<size_t>> first_copy;
  if (items->size() > 1) {
    std::unordered_map<std::string_view, size_t> seen;
    for (size_t i = 0; i < items->size(); ++i) {
      auto [it, added] = seen.try_emplace((*items)[i].request.id, i);
      if (added) continue;
      if (!first_copy) {
        first_copy = std::make_shared<std::vector<size_t>>(items->size());
        for (size_t k = 0; k < items->size(); ++k) (*first_copy)[k] = k;
      }
      (*first_copy)[i] = it->second;
    }
  }
  auto repeated = [&first_copy](size_t i) {
    return first_copy != nullptr && (*first_copy)[i] != i;
  };
  size_t sent = 0;
  for (size_t i = 0; i < items->size(); ++i) sent += repeated(i) ? 0 : 1;
  std::unordered_map<std::string_view, size_t> limit_index;  // key id -> 1..K
  // The keys checked (fields of the rate-limit hash) with each one's policy
  // (the first item's), then the items naming them by index.
  auto index_of = std::make_shared<std::vector<size_t>>(items->size(), 0);
  std::vector<std::string> names;  // the keys checked, in first-use order
  auto key_policies = std::make_shared<std::vector<RateLimitPolicy>>();  // the same, by index - 1
  for (size_t i = 0; i < items->size(); ++i) {
    const EnqueueItem& item = (*items)[i];
    const std::optional<RateLimitCheck> limit = EffectiveLimit(item.options);
    if (!limit.has_value() || repeated(i)) continue;
    auto [it, added] = limit_index.try_emplace(item.options.rate_limit->key_id, 0);
    if (added) {
      names.push_back(limit->key_id);
      it->second = names.size();
      key_policies->push_back(limit->policy);
    }
    (*index_of)[i] = it->second;
  }
  if (!names.empty()) keys.push_back(k.RateLimits());
  // The header: T, capacity, wake_cap, n, K as struct '<ddddd'.
  std::vector<std::string> args(1);
  for (const size_t v : {static_cast<size_t>(options.tier_count), per_shard(options.capacity),
                         options.wake_list_cap, sent, names.size()}) {
    AppendDouble(static_cast<double>(v), &args[0]);
  }
  args.reserve(2 + names.size() + 2 * sent);
  args.insert(args.end(), std::make_move_iterator(names.begin()),
              std::make_move_iterator(names.end()));
  // Each item's numbers, packed as the script unpacks them ('<BI4I4dd').
  // A key's policy is its first item's (key_policies).
  std::string& meta = args.emplace_back();
  meta.reserve(kMetaBytes * sent);
  for (size_t i = 0; i < items->size(); ++i) {
    if (repeated(i)) continue;
    const EnqueueItem& item = (*items)[i];
    const size_t li = (*index_of)[i];
    const RateLimitPolicy* policy = li > 0 ? &(*key_policies)[li - 1] : nullptr;
    AppendMeta(item.request.tier, per_shard(item.options.tier_depth_limit), li,
               policy ? RequestIncrementUs(*policy) : -1,
               policy ? TokenIncrementUs(*policy, item.options.rate_limit->tokens) : -1, &meta);
  }
  for (size_t i = 0; i < items->size(); ++i) {
    if (repeated(i)) continue;
    const WireRequest& r = (*items)[i].request;
    args.push_back(QueueMember(r.dispatch_deadline_us, r.id));
    args.push_back(EncodeEntry(r));
  }
  options.connection->RunScript(
      scripts::Enqueue(), std::move(keys), std::move(args),
      [items = std::move(items), first_copy, sent, index_of, key_policies](ReplyResult reply) {
        Status failed;
        if (!reply.ok()) {
          failed = reply.status();
        } else if (reply->is_error()) {
          failed = Internal("enqueue script: " + reply->str);
        } else if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 4 ||
                   (!reply->elements[2].str.empty() && reply->elements[2].str.size() != sent) ||
                   reply->elements[3].str.size() != 16 * key_policies->size()) {
          failed = Internal("enqueue script: unexpected reply " + reply->DebugString());
        }
        if (!failed.ok()) {
          for (EnqueueItem& item : *items) {
            EnqueueResult r;
            r.status = failed;
            item.done(std::move(r));
          }
          return;
        }
        const auto& e = reply->elements;
        const size_t depth = static_cast<size_t>(std::max<int64_t>(0, e[0].AsInt().value_or(0)));
        const int64_t now_us = e[1].AsInt().value_or(0);
        const std::string& statuses = e[2].str;  // empty: every item queued
        // Each key's state as read, moved by its queued items in order.
        std::vector<KeyState> states(key_policies->size());
        for (size_t k = 0; k < states.size(); ++k) {
          states[k].requests_tat_us = ReadDoubleAsUs(e[3].str, 16 * k);
          states[k].tokens_tat_us = ReadDoubleAsUs(e[3].str, 16 * k + 8);
        }
        std::vector<EnqueueResult> sent_answers;  // with repeats: each first copy's answer
        if (first_copy != nullptr) sent_answers.resize(items->size());
        size_t at = 0;  // the next sent item's status
        for (size_t i = 0; i < items->size(); ++i) {
          EnqueueItem& item = (*items)[i];
          if (first_copy != nullptr && (*first_copy)[i] != i) {
            EnqueueResult r = sent_answers[(*first_copy)[i]];
            if (r.status.ok()) r = ItemResult(item.options, depth, now_us, kDuplicate, KeyState{});
            item.done(std::move(r));
            continue;
          }
          const int status = statuses.empty() ? kQueued : statuses[at++] - '0';
          const size_t li = (*index_of)[i];
          KeyState* state = li > 0 ? &states[li - 1] : nullptr;
          EnqueueResult result =
              ItemResult(item.options, depth, now_us, status, state ? *state : KeyState{});
          if (state != nullptr && status == kQueued) {
            Consume((*key_policies)[li - 1], item.options.rate_limit->tokens, now_us, state);
          }
          if (first_copy != nullptr) sent_answers[i] = result;
          item.done(std::move(result));
        }
      });
}

}  // namespace sluice::redis
