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

// Removes `req` from Redis when still queued there and answers it 499.
void WithdrawFromRedis(RedisQueueClient* client, PendingRequests* pending, const std::string& model,
                       const RequestPtr& req) {
  client->WithdrawAsync(model, {req->id}, [pending, req](Result<std::vector<std::string>> removed) {
    if (!removed.ok() || removed->empty()) return;  // claimed already, or Redis is down
    if (pending->Remove(req->id) == nullptr) return;
    InferenceOutcome o;
    o.status = Status(ErrorCode::kCancelled,
                      "client closed the connection; request removed from the queue before the "
                      "accelerator");
    req->Complete(std::move(o));
  });
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
  Batcher::Options b;
  b.executor = o.executor;
  b.max_batch = o.max_batch;
  b.max_in_flight = o.max_in_flight;
  b.max_delay = o.max_delay;
  // One script call per batch; the batch is done once every item's answer
  // has been handled (the items complete on the connection's thread, or
  // inline when Redis is down).
  b.send = [client = o.client](std::vector<RedisQueueClient::EnqueueItem> items,
                               Batcher::Done done) {
    auto left = std::make_shared<std::atomic<size_t>>(items.size());
    auto shared_done = std::make_shared<Batcher::Done>(std::move(done));
    for (RedisQueueClient::EnqueueItem& item : items) {
      item.done = [inner = std::move(item.done), left,
                   shared_done](RedisQueueClient::EnqueueResult r) {
        inner(std::move(r));
        if (left->fetch_sub(1) == 1) (*shared_done)();
      };
    }
    client->EnqueueBatch(std::move(items));
  };
  auto batcher = Batcher::Create(std::move(b));
  if (!batcher.ok()) return InvalidArgument("redis request queue: " + batcher.status().message());
  return std::unique_ptr<RedisRequestQueue>(new RedisRequestQueue(o, std::move(batcher).value()));
}

void RedisRequestQueue::Withdraw(const RequestPtr& req) {
  if (!options_.pending->IsEnqueued(req->id))
    return;  // answered, or its enqueue reply withdraws it
  WithdrawFromRedis(options_.client, options_.pending, options_.model, req);
}

namespace {
// The "sluice.redis.enqueue" span of a sampled request: a child of its span.
void TraceEnqueue(const tracing::Tracer& tracer, const InferenceRequest& req,
                  int64_t pushed_unix_nanos, const RedisQueueClient::EnqueueResult& r) {
  tracing::Span span;
  span.context = tracing::Tracer::Child(req.trace);
  span.parent_span_id = req.trace.span_id;
  span.name = "sluice.redis.enqueue";
  span.kind = tracing::SpanKind::kClient;
  span.start_unix_nanos = pushed_unix_nanos;
  span.end_unix_nanos = tracing::NowUnixNanos();
  span.attributes = {{"db.system", std::string("redis")},
                     {"sluice.queue_depth", static_cast<int64_t>(r.depth)}};
  span.error = !r.status.ok();
  if (span.error) span.status_message = r.status.message();
  tracer.End(std::move(span));
}
}  // namespace

Status RedisRequestQueue::Push(RequestPtr req) {
  if (!options_.pending->Add(req)) return InvalidArgument("request id already pending");
  RedisQueueClient::EnqueueItem item;
  item.request = ToWireRequest(*req, options_.gateway_id, WallClockAnchor::Now(*options_.clock));
  const RateLimitPolicy& policy = req->principal.rate_limit;
  if (!options_.charge_rate_limits || req->async) {
    // Settled by the front door, not the worker.
    item.request.charged_tokens = 0;
    item.request.tokens_per_minute = 0;
  } else if (policy.requests_per_minute > 0 || policy.tokens_per_minute > 0) {
    item.options.rate_limit =
        RedisQueueClient::RateLimitCheck{req->principal.key_id, policy, req->charged_tokens};
  }
  // Counted at once, until the reply says the depth: a pusher reading
  // Depth() meanwhile (AsyncBacklog's release) sees what is on its way.
  depth_->fetch_add(1, std::memory_order_relaxed);
  const tracing::Tracer* tracer = req->trace.sampled ? options_.tracer : nullptr;
  const int64_t pushed_unix_nanos = tracer != nullptr ? tracing::NowUnixNanos() : 0;
  item.done = [client = options_.client, pending = options_.pending, model = options_.model,
               shards = options_.client->options().queue_shards, depth = depth_,
               errors = redis_errors_, tracer, pushed_unix_nanos,
               req = std::move(req)](RedisQueueClient::EnqueueResult r) {
    if (tracer != nullptr) TraceEnqueue(*tracer, *req, pushed_unix_nanos, r);
    // r.depth is the request's shard's; the shards fill evenly, and the
    // capacity feed's RefreshDepthAsync() sums them exactly.
    if (r.status.ok() || r.queue_full) {
      depth->store(r.depth * shards, std::memory_order_relaxed);
    }
    // Written before MarkEnqueued()/Complete(), which publish it to the
    // completing thread (PendingRequests orders the two).
    if (r.rate_limit) req->rate_limit = *r.rate_limit;
    if (r.status.ok()) {
      pending->MarkEnqueued(req->id);
      // Its client left while the enqueue was on its way (Withdraw saw it
      // not yet enqueued and left it to this reply).
      if (req->cancelled()) WithdrawFromRedis(client, pending, model, req);
      return;
    }
    if (r.status.code() == ErrorCode::kUnavailable && !r.queue_full) {
      errors->fetch_add(1, std::memory_order_relaxed);
    }
    if (pending->Remove(req->id) != nullptr) req->Complete(Refusal(r));
  };
  batcher_->Add(std::move(item));
  return Status::Ok();
}

void RedisRequestQueue::RefreshDepthAsync(RedisClient* connection, size_t tier_count) {
  struct Sum {
    std::atomic<size_t> left;
    std::atomic<size_t> total{0};
    std::atomic<bool> failed{false};
  };
  auto sum = std::make_shared<Sum>();
  const size_t shards = options_.client->options().queue_shards;
  sum->left.store(tier_count * shards);
  const KeySpace& keys = options_.client->options().keys;
  for (size_t i = 0; i < tier_count * shards; ++i) {
    const std::string key = keys.Queue(QueueShard(options_.model, i / tier_count), i % tier_count);
    connection->Submit({"ZCARD", key}, [sum, depth = depth_](ReplyResult reply) {
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
