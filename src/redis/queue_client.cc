#include "redis/queue_client.h"

#include "redis/redis_rate_limiter.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

enum EnqueueStatus { kQueued = 0, kDuplicate = 1, kRateLimited = 2, kFull = 3 };

RedisQueueClient::EnqueueResult ParseEnqueueReply(
    ReplyResult reply, const std::optional<RedisQueueClient::RateLimitCheck>& limit) {
  RedisQueueClient::EnqueueResult out;
  if (!reply.ok()) {
    out.status = reply.status();
    return out;
  }
  if (reply->is_error()) {
    out.status = Internal("enqueue script: " + reply->str);
    return out;
  }
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 6) {
    out.status = Internal("enqueue script: unexpected reply " + reply->DebugString());
    return out;
  }
  const int64_t status = e[0].AsInt().value_or(-1);
  out.depth = static_cast<size_t>(e[1].AsInt().value_or(0));
  out.server_now_us = e[2].AsInt().value_or(0);
  if (limit.has_value() && status != kDuplicate) {
    out.rate_limit =
        DecisionFromScript(limit->policy, limit->tokens, e[3].AsInt().value_or(0) != 0,
                           out.server_now_us, e[4].AsInt().value_or(0), e[5].AsInt().value_or(0));
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
      out.status = Unavailable("queue full (" + std::to_string(out.depth) + " queued)");
      break;
    default:
      out.status = Internal("enqueue script: unknown status " + std::to_string(status));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<RedisQueueClient>> RedisQueueClient::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("redis queue: connection required");
  if (options.tier_count < 1 || options.tier_count > 64) {
    return InvalidArgument("redis queue: tier_count must be in 1..64");
  }
  if (options.wake_list_cap < 1) return InvalidArgument("redis queue: wake_list_cap must be >= 1");
  return std::unique_ptr<RedisQueueClient>(new RedisQueueClient(options));
}

void RedisQueueClient::Enqueue(const WireRequest& request, const EnqueueOptions& enqueue,
                               EnqueueDone done) {
  Status valid = ValidateKeyPart("model", request.model);
  if (valid.ok()) valid = ValidateKeyPart("gateway_id", request.gateway_id);
  if (valid.ok() && request.id.empty()) valid = InvalidArgument("request id: must not be empty");
  if (valid.ok() && request.tier >= options_.tier_count) {
    valid = InvalidArgument("tier " + std::to_string(request.tier) + " out of range");
  }
  if (valid.ok() && enqueue.rate_limit.has_value()) {
    valid = ValidateRateLimitArgs(enqueue.rate_limit->policy, enqueue.rate_limit->tokens);
  }
  if (!valid.ok()) {
    EnqueueResult r;
    r.status = valid;
    done(std::move(r));
    return;
  }
  const KeySpace& k = options_.keys;
  std::vector<std::string> keys = {k.Payloads(request.model), k.Meta(request.model),
                                   k.Wake(request.model)};
  for (size_t t = 0; t < options_.tier_count; ++t) keys.push_back(k.Queue(request.model, t));
  std::optional<RateLimitCheck> limit = enqueue.rate_limit;
  // An unlimited policy needs no state: skip the key (and its slot).
  if (limit.has_value() && limit->policy.requests_per_minute == 0 &&
      limit->policy.tokens_per_minute == 0) {
    limit.reset();
  }
  if (limit.has_value()) keys.push_back(k.RateLimit(limit->key_id));
  std::vector<std::string> args = {std::to_string(options_.tier_count),
                                   request.id,
                                   std::to_string(request.tier),
                                   std::to_string(request.dispatch_deadline_us),
                                   std::to_string(request.arrival_us),
                                   request.gateway_id,
                                   EncodeRequest(request),
                                   std::to_string(options_.capacity),
                                   std::to_string(enqueue.tier_depth_limit),
                                   std::to_string(options_.wake_list_cap),
                                   std::to_string(limit ? limit->policy.requests_per_minute : 0),
                                   std::to_string(limit ? limit->policy.tokens_per_minute : 0),
                                   std::to_string(limit ? limit->tokens : 0)};
  const bool unlimited = enqueue.rate_limit.has_value() && !limit.has_value();
  const int64_t tokens = enqueue.rate_limit ? enqueue.rate_limit->tokens : 0;
  options_.connection->RunScript(
      scripts::Enqueue(), std::move(keys), std::move(args),
      [limit = std::move(limit), tokens, unlimited, done = std::move(done)](ReplyResult reply) {
        EnqueueResult r = ParseEnqueueReply(std::move(reply), limit);
        if (unlimited && r.status.code() != ErrorCode::kInvalidArgument) {
          RateLimitDecision d;
          d.token_cost = tokens;
          r.rate_limit = d;
        }
        done(std::move(r));
      });
}

}  // namespace sluice::redis
