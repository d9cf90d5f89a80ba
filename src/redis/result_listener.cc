#include "redis/result_listener.h"

namespace sluice::redis {

Result<std::unique_ptr<RedisResultListener>> RedisResultListener::Create(Options options) {
  if (Status s = ValidateKeyPart("result listener: gateway_id", options.gateway_id); !s.ok()) {
    return s;
  }
  if (static_cast<bool>(options.on_result) == static_cast<bool>(options.on_results)) {
    return InvalidArgument("result listener: exactly one of on_result and on_results required");
  }
  std::unique_ptr<RedisResultListener> listener(new RedisResultListener());
  RedisSubscriber::Options sub = std::move(options.subscriber);
  sub.channels = {options.keys.ResultChannel(options.gateway_id)};
  sub.on_message = [on_result = std::move(options.on_result),
                    on_results = std::move(options.on_results), results = listener->results_,
                    malformed = listener->malformed_](const std::string&, std::string payload) {
    Result<std::vector<WireResult>> batch = DecodeResultBatch(payload);
    if (!batch.ok()) {
      malformed->fetch_add(1, std::memory_order_relaxed);
      return;
    }
    results->fetch_add(batch->size(), std::memory_order_relaxed);
    if (on_results) {
      on_results(std::move(batch).value());
      return;
    }
    for (WireResult& r : *batch) on_result(std::move(r));
  };
  Result<std::unique_ptr<RedisSubscriber>> subscriber = RedisSubscriber::Create(std::move(sub));
  if (!subscriber.ok()) return subscriber.status();
  listener->subscriber_ = std::move(subscriber).value();
  return listener;
}

}  // namespace sluice::redis
