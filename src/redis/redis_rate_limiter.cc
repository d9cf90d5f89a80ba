#include "redis/redis_rate_limiter.h"

#include <algorithm>

#include "limits/gcra.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

Result<RateLimitDecision> ParseCheckReply(const ReplyResult& reply, const RateLimitPolicy& policy,
                                          int64_t tokens) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal("rate limit script: " + reply->str);
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 4 || !e[0].AsInt() || !e[1].AsInt() ||
      !e[2].AsInt() || !e[3].AsInt()) {
    return Internal("rate limit script: unexpected reply " + reply->DebugString());
  }
  return DecisionFromScript(policy, tokens, *e[0].AsInt() != 0, *e[1].AsInt(), *e[2].AsInt(),
                            *e[3].AsInt());
}

}  // namespace

Status ValidateRateLimitArgs(const RateLimitPolicy& policy, int64_t tokens) {
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
  return std::unique_ptr<RedisRateLimiter>(new RedisRateLimiter(options));
}

Result<RateLimitDecision> RedisRateLimiter::Check(std::string_view key,
                                                  const RateLimitPolicy& policy, int64_t tokens) {
  if (Status s = ValidateRateLimitArgs(policy, tokens); !s.ok()) return s;
  if (policy.requests_per_minute == 0 && policy.tokens_per_minute == 0) {
    RateLimitDecision d;
    d.token_cost = tokens;
    return d;
  }
  ReplyResult reply = options_.connection->CallScript(
      scripts::RateLimitCheck(), {options_.keys.RateLimit(key)},
      {std::to_string(policy.requests_per_minute), std::to_string(policy.tokens_per_minute),
       std::to_string(tokens)});
  return ParseCheckReply(reply, policy, tokens);
}

void RedisRateLimiter::CheckAsync(std::string_view key, const RateLimitPolicy& policy,
                                  int64_t tokens, CheckDone done) {
  if (Status s = ValidateRateLimitArgs(policy, tokens); !s.ok()) return done(s);
  if (policy.requests_per_minute == 0 && policy.tokens_per_minute == 0) {
    RateLimitDecision d;
    d.token_cost = tokens;
    return done(d);
  }
  options_.connection->RunScript(scripts::RateLimitCheck(), {options_.keys.RateLimit(key)},
                                 {std::to_string(policy.requests_per_minute),
                                  std::to_string(policy.tokens_per_minute), std::to_string(tokens)},
                                 [policy, tokens, done = std::move(done)](ReplyResult reply) {
                                   done(ParseCheckReply(reply, policy, tokens));
                                 });
}

void RedisRateLimiter::Reconcile(std::string_view key, const RateLimitPolicy& policy,
                                 int64_t charged_tokens, int64_t actual_tokens) {
  const int64_t tpm = policy.tokens_per_minute;
  if (tpm <= 0 || charged_tokens < 0 || actual_tokens < 0) return;
  const int64_t delta = actual_tokens - charged_tokens;
  if (delta == 0) return;
  options_.connection->RunScript(scripts::RateLimitReconcile(), {options_.keys.RateLimit(key)},
                                 {std::to_string(tpm), std::to_string(delta)},
                                 [errors = reconcile_errors_](ReplyResult reply) {
                                   if (!reply.ok() || reply->is_error()) {
                                     errors->fetch_add(1, std::memory_order_relaxed);
                                   }
                                 });
}

}  // namespace sluice::redis
