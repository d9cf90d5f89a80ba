// RedisRateLimiter: the RateLimiter contract (limits/rate_limiter.h) with
// the state in Redis, so that any number of gateways share each key's
// limits.
//
// Check() is ONE atomic script call (scripts::RateLimitCheck) running the
// GCRA arithmetic of limits/gcra.h in microseconds, with the time from the
// server's TIME: both limits are decided before either is consumed. The
// script returns the key's state before the check; the decision's header
// fields are then computed here with gcra.h itself (DecisionFromScript), so
// headers read the same as with MemoryRateLimiter. A key's state is one field
// of a hash, the key id -> both TATs (keys.h): of sluice:rl, or with
// key_shards of one of sluice:rl:{|n}. The enqueue and complete scripts keep
// it in the same place, so every path charges the same state.
// Reconcile() is a fire-and-forget script; errors are counted, never
// reported. Limits above ~1.5e8 units per minute lose exactness (doubles).
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive the limiter. Blocking: Check() blocks for one round trip (or fails
// at once with kUnavailable while Redis is down); CheckAsync() and
// Reconcile() never block, and CheckAsync's `done` runs on the connection's
// thread (inline when Redis is down).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "limits/rate_limiter.h"
#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

class RedisRateLimiter final : public RateLimiter {
 public:
  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;                      // key names (prefix)
    // Hashes (slots) the keys' states are spread over (see the file
    // comment); 0 = all in sluice:rl (one Redis). 0..4096. Every gateway and
    // worker must agree.
    size_t key_shards = 0;
  };

  // Errors: kInvalidArgument when connection is null.
  static Result<std::unique_ptr<RedisRateLimiter>> Create(const Options& options);

  Result<RateLimitDecision> Check(std::string_view key, const RateLimitPolicy& policy,
                                  int64_t tokens) override;
  void CheckAsync(std::string_view key, const RateLimitPolicy& policy, int64_t tokens,
                  CheckDone done) override;
  void Reconcile(std::string_view key, const RateLimitPolicy& policy, int64_t charged_tokens,
                 int64_t actual_tokens) override;

  struct BatchCheck {
    std::string key_id;
    RateLimitPolicy policy;
    int64_t tokens = 0;
  };
  using BatchDone = std::function<void(std::vector<Result<RateLimitDecision>>)>;
  // Check() for each item, in order per key; `done` gets one result per
  // item (a call's failure for each of its items). Never blocks.
  void CheckBatchAsync(std::vector<BatchCheck> items, BatchDone done);

  struct Settlement {
    std::string key_id;
    int64_t tokens_per_minute = 0;
    int64_t charged_tokens = 0;
    int64_t actual_tokens = 0;
  };
  // Reconcile() for each item (fire and forget).
  void ReconcileBatch(const std::vector<Settlement>& items);

  // Reconcile() calls that failed (Redis down or an error reply).
  uint64_t reconcile_errors() const { return reconcile_errors_->load(std::memory_order_relaxed); }

 private:
  explicit RedisRateLimiter(const Options& options) : options_(options) {}
  // The hash holding `key_id`'s state (see key_shards).
  std::string HashFor(std::string_view key_id) const;

  const Options options_;
  // Shared with pending Reconcile callbacks, which may outlive the limiter.
  std::shared_ptr<std::atomic<uint64_t>> reconcile_errors_ =
      std::make_shared<std::atomic<uint64_t>>(0);
};

// The decision for `policy` and `tokens` from a script's answer: whether it
// allowed the request, the server time and both TATs BEFORE the check (epoch
// µs; 0 = no state). Shared with the enqueue script's combined check.
RateLimitDecision DecisionFromScript(const RateLimitPolicy& policy, int64_t tokens, bool allowed,
                                     int64_t now_us, int64_t requests_tat_us,
                                     int64_t tokens_tat_us);

// kInvalidArgument for an empty key id (the empty field of a rate-limit
// hash is the scripts' mark, script_prelude.cc) or a negative limit or token count
// (as MemoryRateLimiter).
Status ValidateRateLimitArgs(std::string_view key_id, const RateLimitPolicy& policy,
                             int64_t tokens);

}  // namespace sluice::redis
