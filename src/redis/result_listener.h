// RedisResultListener: the gateway's end of the result channel. Subscribes
// to sluice:results:{gateway_id}, decodes each message (a JSON array of
// results, one message per batch) and hands the results to on_result one by
// one or to on_results together; the gateway resolves its waiting requests
// by id (and ignores ids it no longer holds: the request timed out or its
// client left).
//
// Results published while the listener is not subscribed (Redis restart,
// network cut) are lost; the gateway must keep its own per-request total
// deadline (504). Workers count such results as dropped.
//
// Thread-safety: thread-safe. on_result(s) runs on the subscriber's thread;
// it must not block. Lifetime: the destructor stops the subscriber; the
// callback's captures must outlive the listener.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/keys.h"
#include "redis/request_codec.h"
#include "redis/subscriber.h"

namespace sluice::redis {

class RedisResultListener {
 public:
  struct Options {
    // Server and timeouts; `channels`, on_message and on_subscribed are set
    // by the listener.
    RedisSubscriber::Options subscriber;
    KeySpace keys;           // key names (prefix)
    std::string gateway_id;  // this gateway; a valid key part
    // Exactly one is required: each result on its own, or each message's
    // results together (one hand-off per batch for callers that pass them
    // to another thread).
    std::function<void(WireResult&&)> on_result;
    std::function<void(std::vector<WireResult>&&)> on_results;
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisResultListener>> Create(Options options);

  bool subscribed() const { return subscriber_->subscribed(); }
  bool WaitUntilSubscribed(std::chrono::milliseconds timeout) {
    return subscriber_->WaitUntilSubscribed(timeout);
  }
  uint64_t results() const { return results_->load(std::memory_order_relaxed); }
  uint64_t malformed_messages() const { return malformed_->load(std::memory_order_relaxed); }
  const RedisSubscriber& subscriber() const { return *subscriber_; }

 private:
  RedisResultListener() = default;

  std::shared_ptr<std::atomic<uint64_t>> results_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::shared_ptr<std::atomic<uint64_t>> malformed_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::unique_ptr<RedisSubscriber> subscriber_;
};

}  // namespace sluice::redis
