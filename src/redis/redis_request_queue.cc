#include "redis/redis_request_queue.h"

#include <algorithm>

namespace sluice::redis {
namespace {

// The answer to a request the enqueue script refused (or never ran).
InferenceOutcome Refusal(const RedisQueueClient::EnqueueResult& r) {
  InferenceOutcome o;
  if (r.status.code() == ErrorCode::kRateLimited && r.rate_limit) {
    const RateLimitDecision& d = *r.rate_limit;
    if (d.cost_exceeds_limit) {  // as the front door words it in memory mode
      o.status = InvalidArgument("parameters.max_tokens: the request costs " +
                                 std::to_string(d.token_cost) +
                                 " tokens, more than this key's tokens-per-minute limit of " +
                                 std::to_string(d.tokens.limit));
      return o;
    }
    o.status = r.status;
    o.retry_after_s = d.retry_after_s;
    o.reason = d.limited_by == RateLimitKind::kTokens ? "tokens_per_minute" : "requests_per_minute";
    return o;
  }
  if (r.status.code() == ErrorCode::kUnavailable && r.queue_full) {
    o.status = r.status;
    o.reason = "queue_full";
    o.retry_after_s = 1;
    return o;
  }
  if (r.status.code() == ErrorCode::kUnavailable) {
    o.status = Unavailable("the request queue (Redis) is unavailable: " + r.status.message());
    o.reason = "redis_unavailable";
    o.retry_after_s = 1;
    return o;
  }
  o.status = r.status;
  return o;
}

}  // namespace

Result<std::unique_ptr<RedisRequestQueue>> RedisRequestQueue::Create(const Options& options) {
  if (options.client == nullptr) return InvalidArgument("redis request queue: client required");
  if (options.pending == nullptr) return InvalidArgument("redis request queue: pending required");
  if (Status s = ValidateKeyPart("redis request queue: model", options.model); !s.ok()) return s;
  if (Status s = ValidateKeyPart("redis request queue: gateway_id", options.gateway_id); !s.ok()) {
    return s;
  }
  Options o = options;
  if (o.clock == nullptr) o.clock = SystemClock();
  return std::unique_ptr<RedisRequestQueue>(new RedisRequestQueue(o));
}

Status RedisRequestQueue::Push(RequestPtr req) {
  if (!options_.pending->Add(req)) return InvalidArgument("request id already pending");
  WireRequest wire =
      ToWireRequest(*req, options_.gateway_id, WallClockAnchor::Now(*options_.clock));
  RedisQueueClient::EnqueueOptions enqueue;
  const RateLimitPolicy& policy = req->principal.rate_limit;
  if (policy.requests_per_minute > 0 || policy.tokens_per_minute > 0) {
    enqueue.rate_limit =
        RedisQueueClient::RateLimitCheck{req->principal.key_id, policy, req->charged_tokens};
  }
  options_.client->Enqueue(wire, enqueue,
                           [pending = options_.pending, depth = depth_, errors = redis_errors_,
                            req = std::move(req)](RedisQueueClient::EnqueueResult r) {
                             if (r.status.ok() || r.queue_full)
                               depth->store(r.depth, std::memory_order_relaxed);
                             // Written before MarkEnqueued()/Complete(), which publish it to the
                             // completing thread (PendingRequests orders the two).
                             if (r.rate_limit) req->rate_limit = *r.rate_limit;
                             if (r.status.ok()) {
                               pending->MarkEnqueued(req->id);
                               return;
                             }
                             if (r.status.code() == ErrorCode::kUnavailable && !r.queue_full) {
                               errors->fetch_add(1, std::memory_order_relaxed);
                             }
                             if (pending->Remove(req->id) != nullptr) req->Complete(Refusal(r));
                           });
  return Status::Ok();
}

void RedisRequestQueue::RefreshDepthAsync(RedisConnection* connection, size_t tier_count) {
  struct Sum {
    std::atomic<size_t> left;
    std::atomic<size_t> total{0};
    std::atomic<bool> failed{false};
  };
  auto sum = std::make_shared<Sum>();
  sum->left.store(tier_count);
  const KeySpace& keys = options_.client->options().keys;
  for (size_t t = 0; t < tier_count; ++t) {
    connection->Submit({"ZCARD", keys.Queue(options_.model, t)}, [sum, depth = depth_](
                                                                     ReplyResult reply) {
      if (!reply.ok() || reply->is_error()) {
        sum->failed.store(true);
      } else {
        sum->total.fetch_add(static_cast<size_t>(std::max<int64_t>(0, reply->AsInt().value_or(0))));
      }
      if (sum->left.fetch_sub(1) == 1 && !sum->failed.load()) {
        depth->store(sum->total.load(), std::memory_order_relaxed);
      }
    });
  }
}

}  // namespace sluice::redis
