// RedisRequestQueue: the RequestQueue a gateway's InferenceService pushes
// into when queues live in Redis (`sluice gateway`). One per model.
//
// Push() registers the request in the gateway's PendingRequests table and
// hands it to the model's TurnBatcher (common/turn_batcher.h): the requests
// pushed in one event-loop turn, or while the previous enqueue is in
// flight, go to Redis in ONE script call (RedisQueueClient::EnqueueBatch)
// that checks each key's rate limit, bounds the queue and queues them,
// atomically. Push() returns OK at once (the request is taken) and the
// request is completed later, exactly once:
//   - by its result, published by a worker on this gateway's channel
//     (PendingRequests::Deliver, fed by a RedisResultListener);
//   - with 504 when its total deadline passes first (PendingRequests::
//     ExpireUntil, on the gateway's timer);
//   - at once when the script refuses it: 429 (rate limit; the decision,
//     with the header fields, is stored in req->rate_limit), 400 (its token
//     cost exceeds the key's tokens-per-minute limit), 503 "queue_full", or
//     503 "redis_unavailable" when Redis is down or the reply timed out.
// REQUIRES for Push(): the request's deadlines set (InferenceService::
// Submit does), charged_tokens and principal.rate_limit as charged by the
// front door, and on_complete set.
//
// A FrontDoorQueue only: workers pop from Redis (batch_claimer.h). A client
// that hangs up is withdrawn from Redis (Withdraw, 499).
// Depth() is the model's queue depth in Redis as last seen (every enqueue
// reply carries its shard's, times the shard count; RefreshDepthAsync()
// reads the exact sum when no request flows), plus the requests pushed
// since, so admission sees a depth at most one refresh period old. QueuedAhead() is
// Depth() (pessimistic for short-budget tiers under EDF).
//
// Thread-safety: thread-safe. Ownership: client and pending are not owned
// and must outlive the queue and every callback of its pushes. Blocking:
// never.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>

#include "common/turn_batcher.h"
#include "core/request_queue.h"
#include "redis/pending_requests.h"
#include "redis/queue_client.h"
#include "tracing/tracer.h"

namespace sluice::redis {

class RedisRequestQueue final : public FrontDoorQueue {
 public:
  struct Options {
    RedisQueueClient* client = nullptr;  // required; not owned
    PendingRequests* pending = nullptr;  // required; not owned; shared by all models
    std::string model;                   // the model this queue is for; a valid key part
    std::string gateway_id;              // owner of the results; a valid key part
    const Clock* clock = nullptr;        // default: SystemClock()
    // Runs the end-of-turn flush of the batcher; required. Not owned.
    Executor* executor = nullptr;
    size_t max_batch = 256;    // requests per enqueue call; >= 1
    size_t max_in_flight = 1;  // enqueue calls in flight before pushes wait; >= 1
    Micros max_delay{0};       // longest wait for a fuller batch; 0 = one turn
    // Whether the enqueue script checks and charges each synchronous
    // request's rate limit (and the worker settles its tokens). False: the
    // front door charged them already (a model that caches or collapses:
    // see InferenceService::Model::queue_charges). Async requests are
    // always charged by the front door.
    bool charge_rate_limits = true;
    // A sampled request's enqueue becomes a "sluice.redis.enqueue" span,
    // a child of its span (Push to Redis's reply). Optional; not owned.
    const tracing::Tracer* tracer = nullptr;
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisRequestQueue>> Create(const Options& options);

  Status Push(RequestPtr req) override;
  size_t Depth() const override { return depth_->load(std::memory_order_relaxed); }
  // This gateway's async requests of the model not answered yet (queued or
  // on a worker: an overestimate of those queued, so at most Depth()).
  // Other gateways' count as synchronous.
  size_t AsyncDepth() const override {
    return std::min(Depth(), options_.pending->async_waiting(options_.model));
  }
  size_t QueuedAhead(TierIndex, TimePoint) const override { return Depth(); }
  // Removes the request from Redis if no worker claimed it yet and answers
  // it 499; also when the client left before its enqueue reply (the reply
  // then withdraws it).
  void Withdraw(const RequestPtr& req) override;

  // Reads the model's queue depth (one ZCARD per tier and shard, pipelined) and
  // updates Depth(). Never blocks; errors leave Depth() as it was.
  void RefreshDepthAsync(RedisClient* connection, size_t tier_count);

  // Pushes refused because Redis was down or did not answer.
  uint64_t redis_errors() const { return redis_errors_->load(std::memory_order_relaxed); }
  // Requests sent and enqueue calls made (their ratio is the batch size).
  TurnBatcher<RedisQueueClient::EnqueueItem>::Stats batching() const { return batcher_->stats(); }

 private:
  using Batcher = TurnBatcher<RedisQueueClient::EnqueueItem>;
  RedisRequestQueue(const Options& options, std::unique_ptr<Batcher> batcher)
      : options_(options), batcher_(std::move(batcher)) {}

  const Options options_;
  // Shared with callbacks in flight (they may finish after a failed start).
  std::shared_ptr<std::atomic<size_t>> depth_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<std::atomic<uint64_t>> redis_errors_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::unique_ptr<Batcher> batcher_;
};

}  // namespace sluice::redis
