// RedisQueueTest: a real redis-server with a queue client, a claimer and a
// reaper for model "llama" (3 tiers), and the helpers the queue tests share
// (queue_test.cc: enqueue and claim; queue_completion_test.cc: complete,
// renew, reap, dead letters, token settlement).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "redis/batch_claimer.h"
#include "redis/dead_letters.h"
#include "redis/queue_client.h"
#include "redis/reaper.h"
#include "redis/redis_test_fixture.h"
#include "redis/result_listener.h"

namespace sluice::redis::queue_testing {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

inline constexpr char kModel[] = "llama";

inline int64_t NowUs() { return WallClockAnchor::Now(*SystemClock()).epoch_us; }

inline std::vector<TierPolicy> Tiers() {
  std::vector<TierPolicy> tiers(3);
  tiers[0].name = "free";
  tiers[0].priority = 0;
  tiers[1].name = "paid";
  tiers[1].priority = 1;
  tiers[2].name = "enterprise";
  tiers[2].priority = 2;
  return tiers;
}

inline WireRequest Request(const std::string& id, uint32_t tier, int64_t deadline_in_ms,
                           const std::string& gateway = "gw-a") {
  WireRequest r;
  r.id = id;
  r.gateway_id = gateway;
  r.key_id = "key-1";
  r.tier = tier;
  r.tier_name = Tiers()[tier].name;
  r.model = kModel;
  r.input = "input of " + id;
  r.max_tokens = 8;
  const int64_t now = NowUs();
  r.arrival_us = now;
  r.dispatch_deadline_us = now + deadline_in_ms * 1000;
  r.total_deadline_us = r.dispatch_deadline_us + 2'000'000;
  return r;
}

inline std::vector<std::string> Ids(const std::vector<WireRequest>& requests) {
  std::vector<std::string> ids;
  for (const WireRequest& r : requests) ids.push_back(r.id);
  return ids;
}

inline WireResult Answer(const WireRequest& r, const std::string& output) {
  WireResult w;
  w.id = r.id;
  w.queue_tier = static_cast<int32_t>(r.tier);  // as a worker completes
  w.owner_gateway_id = r.gateway_id;
  w.lease = r.lease;
  w.first_attempt = r.attempts == 0;  // as a worker completes
  w.output = output;
  w.tokens_used = 3;
  return w;
}

// Enqueues `r` with `queue` and waits (up to 5 s) for its answer.
inline RedisQueueClient::EnqueueResult EnqueueAndWait(RedisQueueClient& queue, const WireRequest& r,
                                                      RedisQueueClient::EnqueueOptions options) {
  Latch done;
  std::optional<RedisQueueClient::EnqueueResult> out;
  queue.Enqueue(r, options, [&](RedisQueueClient::EnqueueResult result) {
    out = std::move(result);
    done.Signal();
  });
  EXPECT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  if (!out.has_value()) {
    out.emplace();
    out->status = Internal("no reply");
  }
  return std::move(*out);
}

// Enqueues `cases` with one EnqueueBatch() call and waits (up to 5 s) for
// every answer, in the cases' order (nullopt: none came).
using EnqueueCase = std::pair<WireRequest, RedisQueueClient::EnqueueOptions>;
inline std::vector<std::optional<RedisQueueClient::EnqueueResult>> EnqueueBatchAndWait(
    RedisQueueClient& queue, const std::vector<EnqueueCase>& cases) {
  Latch done;
  std::vector<std::optional<RedisQueueClient::EnqueueResult>> out(cases.size());
  std::vector<RedisQueueClient::EnqueueItem> items;
  for (size_t i = 0; i < cases.size(); ++i) {
    items.push_back({cases[i].first, cases[i].second, [&, i](RedisQueueClient::EnqueueResult r) {
                       out[i] = std::move(r);
                       done.Signal();
                     }});
  }
  queue.EnqueueBatch(std::move(items));
  EXPECT_TRUE(done.WaitFor(static_cast<int>(cases.size()), milliseconds(5'000)));
  return out;
}

class RedisQueueTest : public RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    if (HasFatalFailure()) return;
    RedisQueueClient::Options q;
    q.connection = connection_.get();
    q.tier_count = 3;
    q.capacity = 100;
    queue_ = std::move(RedisQueueClient::Create(q)).value();
    claimer_ = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 10'000'000);
    RedisReaper::Options r;
    r.connection = connection_.get();
    r.tier_count = 3;
    r.max_retries = 2;
    reaper_ = std::move(RedisReaper::Create(r)).value();
  }

  std::unique_ptr<RedisBatchClaimer> NewClaimer(QueueOrdering ordering, int64_t lease_us,
                                                size_t inline_entries_max = 8,
                                                size_t max_expired_per_claim = 256) {
    RedisBatchClaimer::Options c;
    c.inline_entries_max = inline_entries_max;
    c.max_expired_per_claim = max_expired_per_claim;
    c.connection = connection_.get();
    c.model = kModel;
    c.tiers = Tiers();
    c.ordering = ordering;
    c.lease_us = lease_us;
    c.max_block_ms = 2'000;
    Result<std::unique_ptr<RedisBatchClaimer>> claimer = RedisBatchClaimer::Create(c);
    EXPECT_TRUE(claimer.ok()) << claimer.status().ToString();
    return std::move(claimer).value();
  }

  std::unique_ptr<RedisResultListener> NewListener(const std::string& gateway,
                                                   std::function<void(WireResult&&)> on_result) {
    RedisResultListener::Options o;
    o.subscriber.host = "127.0.0.1";
    o.subscriber.port = server_->port();
    o.gateway_id = gateway;
    o.on_result = std::move(on_result);
    Result<std::unique_ptr<RedisResultListener>> l = RedisResultListener::Create(std::move(o));
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    EXPECT_TRUE((*l)->WaitUntilSubscribed(milliseconds(5'000)));
    return std::move(l).value();
  }

  RedisQueueClient::EnqueueResult Enqueue(const WireRequest& r,
                                          RedisQueueClient::EnqueueOptions options = {}) {
    return EnqueueAndWait(*queue_, r, std::move(options));
  }

  RedisBatchClaimer::Batch ClaimNow(RedisBatchClaimer& claimer, size_t max_batch) {
    RedisBatchClaimer::ClaimOptions o;
    o.max_batch = max_batch;
    Result<RedisBatchClaimer::Batch> b = claimer.TryClaim(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b).value() : RedisBatchClaimer::Batch{};
  }

  // Reaps until `model`'s expired leases are handled (leases of 1 ms run
  // out almost at once; the loop is bounded in count and time).
  RedisReaper::Outcome ReapUntilSomething() {
    const auto deadline = SteadyTime::now() + milliseconds(2'000);
    for (int i = 0; i < 2'000 && SteadyTime::now() < deadline; ++i) {
      Result<RedisReaper::Outcome> o = reaper_->ReapOnce(kModel);
      EXPECT_TRUE(o.ok()) << o.status().ToString();
      if (!o.ok() || o->scanned > 0) return o.ok() ? *o : RedisReaper::Outcome{};
      std::this_thread::sleep_for(milliseconds(1));
    }
    ADD_FAILURE() << "no lease expired within 2 s";
    return {};
  }

  std::unique_ptr<RedisQueueClient> queue_;
  std::unique_ptr<RedisBatchClaimer> claimer_;
  std::unique_ptr<RedisReaper> reaper_;
};

}  // namespace sluice::redis::queue_testing
