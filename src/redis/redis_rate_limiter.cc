#include "redis/redis_rate_limiter.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

#include "limits/gcra.h"
#include "redis/hash_slot.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

// Item `k`'s decision from a RateLimitCheck reply ({now, then allowed,
// r_tat, t_tat per item}), or the call's error.
Result<RateLimitDecision> ParseCheckItem(const ReplyResult& reply, size_t k,
                                         const RateLimitPolicy& policy, int64_t tokens) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal("rate limit script: " + reply->str);
  const auto& e = reply->elements;
  const size_t at = 1 + 3 * k;
  if (reply->type != RedisReply::Type::kArray || e.size() < at + 3 || !e[0].AsInt() ||
      !e[at].AsInt() || !e[at + 1].AsInt() || !e[at + 2].AsInt()) {
    return Internal("rate limit script: unexpected reply " + reply->DebugString());
  }
  return DecisionFromScript(policy, tokens, *e[at].AsInt() != 0, *e[0].AsInt(), *e[at + 1].AsInt(),
                            *e[at + 2].AsInt());
}

// The arguments of RateLimitCheck / RateLimitReconcile: K, the K key ids,
// n, then the items' own arguments.
std::vector<std::string> NamesThenItems(std::vector<std::string> names, size_t n,
                                        std::vector<std::string> item_args) {
  std::vector<std::string> args;
  args.reserve(2 + names.size() + item_args.size());
  args.push_back(std::to_string(names.size()));
  args.insert(args.end(), std::make_move_iterator(names.begin()),
              std::make_move_iterator(names.end()));
  args.push_back(std::to_string(n));
  args.insert(args.end(), std::make_move_iterator(item_args.begin()),
              std::make_move_iterator(item_args.end()));
  return args;
}

}  // namespace

Status ValidateRateLimitArgs(std::string_view key_id, const RateLimitPolicy& policy,
                             int64_t tokens) {
  if (key_id.empty()) return InvalidArgument("rate limit: key id must not be empty");
  if (policy.requests_per_minute < 0 || policy.tokens_per_minute < 0) {
    return InvalidArgument("rate limit policy: limits must be >= 0, got requests_per_minute=" +
                           std::to_string(policy.requests_per_minute) +
                           ", tokens_per_minute=" + std::to_string(policy.tokens_per_minute));
  }
  if (tokens < 0) return InvalidArgument("rate limit: tokens must be >= 0");
  return Status::Ok();
}

RateLimitDecision DecisionFromScript(const RateLimitPolicy& policy, int64_t tokens, bool allowed,
                                     int64_t now_us, int64_t requests_tat_us,
                                     int64_t tokens_tat_us) {
  const int64_t rpm = policy.requests_per_minute;
  const int64_t tpm = policy.tokens_per_minute;
  RateLimitDecision d;
  d.token_cost = tokens;
  if (rpm == 0 && tpm == 0) return d;
  const int64_t now_ns = now_us * 1000;
  gcra::Outcome by_requests;
  gcra::Outcome by_tokens;
  by_requests.allowed = by_tokens.allowed = true;
  by_requests.tat_ns = requests_tat_us * 1000;
  by_tokens.tat_ns = tokens_tat_us * 1000;
  if (rpm > 0) by_requests = gcra::Check(requests_tat_us * 1000, now_ns, rpm, 1);
  if (tpm > 0) by_tokens = gcra::Check(tokens_tat_us * 1000, now_ns, tpm, tokens);
  // The script's verdict stands; the state after is the consumed one iff it
  // allowed (gcra.h and the script round differently only at the last µs).
  d.allowed = allowed;
  const int64_t requests_after =
      allowed && rpm > 0 ? std::max(by_requests.tat_ns, std::max(requests_tat_us * 1000, now_ns))
                         : requests_tat_us * 1000;
  const int64_t tokens_after =
      allowed && tpm > 0 ? std::max(by_tokens.tat_ns, std::max(tokens_tat_us * 1000, now_ns))
                         : tokens_tat_us * 1000;
  if (rpm > 0) d.requests = LimitStateAfter(requests_after, now_ns, rpm);
  if (tpm > 0) d.tokens = LimitStateAfter(tokens_after, now_ns, tpm);
  if (!allowed) FillRejection(policy, by_requests, by_tokens, &d);
  return d;
}

Result<std::unique_ptr<RedisRateLimiter>> RedisRateLimiter::Create(const Options& options) {
  if (options.connection == nullptr)
    return InvalidArgument("redis rate limiter: connection required");
  if (options.key_shards > 4096) {
    return InvalidArgument("redis rate limiter: key_shards must be in 0..4096");
  }
  return std::unique_ptr<RedisRateLimiter>(new RedisRateLimiter(options));
}

std::string RedisRateLimiter::HashFor(std::string_view key_id) const {
  if (options_.key_shards == 0) return options_.keys.RateLimits();
  return options_.keys.RateLimitsInShard(Crc16(key_id) % options_.key_shards);
}

Result<RateLimitDecision> RedisRateLimiter::Check(std::string_view key,
                                                  const RateLimitPolicy& policy, int64_t tokens) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<RateLimitDecision>> decision;
  };
  auto slot = std::make_shared<Slot>();  // outlives a reply that comes too late
  CheckAsync(key, policy, tokens, [slot](Result<RateLimitDecision> d) {
    std::lock_guard lock(slot->mu);
    slot->decision.emplace(std::move(d));
    slot->cv.notify_all();
  });
  std::unique_lock lock(slot->mu);
  if (!slot->cv.wait_for(lock, options_.connection->reply_wait_limit(),
                         [&] { return slot->decision.has_value(); })) {
    return Unavailable("rate limit: no reply from Redis");
  }
  return std::move(*slot->decision);
}

void RedisRateLimiter::CheckAsync(std::string_view key, const RateLimitPolicy& policy,
                                  int64_t tokens, CheckDone done) {
  CheckBatchAsync({BatchCheck{std::string(key), policy, tokens}},
                  [done = std::move(done)](std::vector<Result<RateLimitDecision>> r) {
                    done(std::move(r.at(0)));
                  });
}

void RedisRateLimiter::Reconcile(std::string_view key, const RateLimitPolicy& policy,
                                 int64_t charged_tokens, int64_t actual_tokens) {
  ReconcileBatch(
      {Settlement{std::string(key), policy.tokens_per_minute, charged_tokens, actual_tokens}});
}

void RedisRateLimiter::CheckBatchAsync(std::vector<BatchCheck> items, BatchDone done) {
  struct Round {
    std::mutex mu;
    std::vector<Result<RateLimitDecision>> out;
    size_t calls_left = 0;
    BatchDone done;
  };
  auto round = std::make_shared<Round>();
  round->out.assign(items.size(), Result<RateLimitDecision>(Internal("not checked")));
  round->done = std::move(done);
  // Items needing Redis, grouped by the hash holding their key's state (one
  // call each).
  std::map<std::string, std::vector<size_t>> by_hash;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchCheck& c = items[i];
    if (Status s = ValidateRateLimitArgs(c.key_id, c.policy, c.tokens); !s.ok()) {
      round->out[i] = s;
    } else if (c.policy.requests_per_minute == 0 && c.policy.tokens_per_minute == 0) {
      RateLimitDecision d;  // unlimited: no state
      d.token_cost = c.tokens;
      round->out[i] = d;
    } else {
      by_hash[HashFor(c.key_id)].push_back(i);
    }
  }
  if (by_hash.empty()) {
    round->done(std::move(round->out));
    return;
  }
  round->calls_left = by_hash.size();
  for (auto& [hash, indices] : by_hash) {
    std::vector<std::string> names;
    std::map<std::string_view, size_t> name_index;  // key id -> 1..K
    std::vector<std::string> item_args;
    for (const size_t i : indices) {
      const BatchCheck& c = items[i];
      auto [it, added] = name_index.try_emplace(c.key_id, names.size() + 1);
      if (added) names.push_back(c.key_id);
      item_args.push_back(std::to_string(it->second));
      item_args.push_back(std::to_string(c.policy.requests_per_minute));
      item_args.push_back(std::to_string(c.policy.tokens_per_minute));
      item_args.push_back(std::to_string(c.tokens));
    }
    std::vector<std::string> args =
        NamesThenItems(std::move(names), indices.size(), std::move(item_args));
    std::vector<std::pair<RateLimitPolicy, int64_t>> asked;
    for (const size_t i : indices) asked.emplace_back(items[i].policy, items[i].tokens);
    options_.connection->RunScript(
        scripts::RateLimitCheck(), {hash}, std::move(args),
        [round, indices = std::move(indices), asked = std::move(asked)](ReplyResult reply) {
          std::unique_lock lock(round->mu);
          for (size_t k = 0; k < indices.size(); ++k) {
            round->out[indices[k]] = ParseCheckItem(reply, k, asked[k].first, asked[k].second);
          }
          if (--round->calls_left > 0) return;
          lock.unlock();  // the last reply: no other callback touches it now
          round->done(std::move(round->out));
        });
  }
}

void RedisRateLimiter::ReconcileBatch(const std::vector<Settlement>& items) {
  struct Call {
    std::vector<std::string> names;  // key ids, in first-use order
    std::vector<std::string> item_args;
  };
  std::map<std::string, Call> by_hash;
  for (const Settlement& s : items) {
    const int64_t tpm = s.tokens_per_minute;
    if (s.key_id.empty() || tpm <= 0 || s.charged_tokens < 0 || s.actual_tokens < 0) continue;
    const int64_t delta = s.actual_tokens - s.charged_tokens;
    if (delta == 0) continue;
    Call& call = by_hash[HashFor(s.key_id)];
    auto it = std::find(call.names.begin(), call.names.end(), s.key_id);
    if (it == call.names.end()) it = call.names.insert(call.names.end(), s.key_id);
    call.item_args.push_back(std::to_string(it - call.names.begin() + 1));
    call.item_args.push_back(std::to_string(tpm));
    call.item_args.push_back(std::to_string(delta));
  }
  for (auto& [hash, call] : by_hash) {
    const size_t n = call.item_args.size() / 3;
    options_.connection->RunScript(
        scripts::RateLimitReconcile(), {hash},
        NamesThenItems(std::move(call.names), n, std::move(call.item_args)),
        [errors = reconcile_errors_](ReplyResult reply) {
          if (!reply.ok() || reply->is_error()) errors->fetch_add(1, std::memory_order_relaxed);
        });
  }
}

}  // namespace sluice::redis
