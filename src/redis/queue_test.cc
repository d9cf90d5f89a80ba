// The Redis queue end to end against a real server: enqueue (gateway),
// claim and complete (worker), results over pub/sub, reaper.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "redis/batch_claimer.h"
#include "redis/dead_letters.h"
#include "redis/queue_client.h"
#include "redis/reaper.h"
#include "redis/redis_test_fixture.h"
#include "redis/result_listener.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

constexpr char kModel[] = "llama";

int64_t NowUs() { return WallClockAnchor::Now(*SystemClock()).epoch_us; }

std::vector<TierPolicy> Tiers() {
  std::vector<TierPolicy> tiers(3);
  tiers[0].name = "free";
  tiers[0].priority = 0;
  tiers[1].name = "paid";
  tiers[1].priority = 1;
  tiers[2].name = "enterprise";
  tiers[2].priority = 2;
  return tiers;
}

WireRequest Request(const std::string& id, uint32_t tier, int64_t deadline_in_ms,
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

std::vector<std::string> Ids(const std::vector<WireRequest>& requests) {
  std::vector<std::string> ids;
  for (const WireRequest& r : requests) ids.push_back(r.id);
  return ids;
}

WireResult Answer(const WireRequest& r, const std::string& output) {
  WireResult w;
  w.id = r.id;
  w.queue_tier = static_cast<int32_t>(r.tier);  // as a worker completes
  w.owner_gateway_id = r.gateway_id;
  w.output = output;
  w.tokens_used = 3;
  return w;
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

  std::unique_ptr<RedisBatchClaimer> NewClaimer(QueueOrdering ordering, int64_t lease_us) {
    RedisBatchClaimer::Options c;
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
    Latch done;
    std::optional<RedisQueueClient::EnqueueResult> out;
    queue_->Enqueue(r, options, [&](RedisQueueClient::EnqueueResult result) {
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

TEST_F(RedisQueueTest, EarliestDeadlineFirstAcrossTiersWithTierTiebreak) {
  const int64_t now = NowUs();
  WireRequest free_late = Request("free-late", 0, 0);
  WireRequest enterprise = Request("enterprise", 2, 0);
  WireRequest paid = Request("paid", 1, 0);
  WireRequest free_early = Request("free-early", 0, 0);
  free_late.dispatch_deadline_us = now + 300'000;
  enterprise.dispatch_deadline_us = now + 500'000;
  paid.dispatch_deadline_us = now + 100'000;
  free_early.dispatch_deadline_us = now + 100'000;  // same deadline as paid
  for (const WireRequest& r : {free_late, enterprise, paid, free_early}) {
    ASSERT_TRUE(Enqueue(r).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 10);
  EXPECT_EQ(Ids(batch.requests),
            (std::vector<std::string>{"paid", "free-early", "free-late", "enterprise"}));
  EXPECT_EQ(batch.depth, 0u);
  EXPECT_TRUE(batch.expired.empty());
  // The payload comes back whole.
  EXPECT_EQ(batch.requests[0].input, "input of paid");
  EXPECT_EQ(batch.requests[0].gateway_id, "gw-a");
  EXPECT_EQ(batch.requests[0].attempts, 0u);
}

// One script call decides a whole batch in order: each key's limit sees the
// requests before it, the bound fills up mid-batch, a duplicate (in Redis
// or earlier in the batch) is refused without consuming the limit, and bad
// items are answered without costing the others their call.
TEST_F(RedisQueueTest, OneCallEnqueuesABatchDecidingEachRequestInOrder) {
  RedisQueueClient::Options q;
  q.connection = connection_.get();
  q.tier_count = 3;
  q.capacity = 5;
  auto queue = std::move(RedisQueueClient::Create(q)).value();
  ASSERT_TRUE(Enqueue(Request("old", 0, 1'000)).status.ok());  // through queue_, same keys

  auto limited = [](const std::string& key, int64_t rpm) {
    RedisQueueClient::EnqueueOptions o;
    o.rate_limit = RedisQueueClient::RateLimitCheck{key, RateLimitPolicy{rpm, 0}, 1};
    return o;
  };
  struct Case {
    WireRequest request;
    RedisQueueClient::EnqueueOptions options;
  };
  WireRequest bad_tier = Request("bad-tier", 0, 1'000);
  bad_tier.tier = 7;
  const std::vector<Case> cases = {
      {Request("a1", 0, 1'000), limited("key-a", 2)},
      {Request("a2", 1, 1'000), limited("key-a", 2)},
      {Request("a3", 2, 1'000), limited("key-a", 2)},   // key-a's third: 429
      {Request("old", 0, 1'000), limited("key-b", 1)},  // queued before: duplicate
      {Request("b1", 2, 1'000), limited("key-b", 1)},   // the duplicate cost key-b nothing
      {bad_tier, {}},                                   // answered inline
      {Request("b1", 1, 1'000), {}},                    // duplicate within the batch
      {Request("c1", 0, 1'000), {}},                    // 5th queued: fills the bound
      {Request("c2", 0, 1'000), limited("key-c", 5)},   // full: 503, key-c not charged
  };
  const uint64_t calls_before = connection_->stats().commands_sent;
  Latch done;
  std::vector<std::optional<RedisQueueClient::EnqueueResult>> out(cases.size());
  std::vector<RedisQueueClient::EnqueueItem> items;
  for (size_t i = 0; i < cases.size(); ++i) {
    items.push_back({cases[i].request, cases[i].options, [&, i](RedisQueueClient::EnqueueResult r) {
                       out[i] = std::move(r);
                       done.Signal();
                     }});
  }
  queue->EnqueueBatch(std::move(items));
  ASSERT_TRUE(done.WaitFor(static_cast<int>(cases.size()), milliseconds(5'000)));
  // One EVALSHA (and the script's first SCRIPT LOAD is already done).
  EXPECT_EQ(connection_->stats().commands_sent - calls_before, 1u);

  auto code = [&](size_t i) { return out[i]->status.code(); };
  EXPECT_EQ(code(0), ErrorCode::kOk);
  EXPECT_EQ(out[0]->rate_limit->requests.remaining, 1);
  EXPECT_EQ(code(1), ErrorCode::kOk);
  EXPECT_EQ(out[1]->rate_limit->requests.remaining, 0);
  EXPECT_EQ(code(2), ErrorCode::kRateLimited);
  EXPECT_FALSE(out[2]->rate_limit->allowed);
  EXPECT_EQ(out[3]->status.message(), "request id already queued");
  EXPECT_EQ(code(4), ErrorCode::kOk);
  EXPECT_EQ(out[4]->rate_limit->requests.remaining, 0);
  EXPECT_EQ(out[5]->status.message(), "tier 7 out of range");
  EXPECT_EQ(out[6]->status.message(), "request id already queued");
  EXPECT_EQ(code(7), ErrorCode::kOk);
  EXPECT_EQ(code(8), ErrorCode::kUnavailable);
  EXPECT_TRUE(out[8]->queue_full);
  EXPECT_EQ(out[8]->depth, 5u);

  // Queued in deadline order with their payloads and tiers; key-c untouched.
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 10);
  std::vector<std::string> ids = Ids(batch.requests);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"a1", "a2", "b1", "c1", "old"}));
  for (const WireRequest& r : batch.requests) {
    if (r.id == "b1") {
      EXPECT_EQ(r.tier, 2u);  // the first b1 won
    }
    EXPECT_EQ(r.input, "input of " + r.id);
  }
  EXPECT_EQ(connection_->Call({"EXISTS", KeySpace().RateLimit("key-c")})->AsInt(), 0);
}

TEST_F(RedisQueueTest, StrictPriorityTakesHigherTiersFirst) {
  auto strict = NewClaimer(QueueOrdering::kStrictPriority, 10'000'000);
  ASSERT_TRUE(Enqueue(Request("free-1", 0, 100)).status.ok());
  ASSERT_TRUE(Enqueue(Request("free-0", 0, 50)).status.ok());
  ASSERT_TRUE(Enqueue(Request("enterprise", 2, 900)).status.ok());
  ASSERT_TRUE(Enqueue(Request("paid", 1, 500)).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*strict, 10);
  EXPECT_EQ(Ids(batch.requests),
            (std::vector<std::string>{"enterprise", "paid", "free-0", "free-1"}));
}

TEST_F(RedisQueueTest, ClaimTakesAtMostMaxBatch) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Enqueue(Request("r" + std::to_string(i), 0, 1'000 + i)).status.ok());
  }
  RedisBatchClaimer::Batch first = ClaimNow(*claimer_, 4);
  EXPECT_EQ(Ids(first.requests), (std::vector<std::string>{"r0", "r1", "r2", "r3"}));
  EXPECT_EQ(first.depth, 6u);
  EXPECT_EQ(ClaimNow(*claimer_, 4).requests.size(), 4u);
  RedisBatchClaimer::Batch last = ClaimNow(*claimer_, 4);
  EXPECT_EQ(Ids(last.requests), (std::vector<std::string>{"r8", "r9"}));
  EXPECT_EQ(last.depth, 0u);
  EXPECT_TRUE(ClaimNow(*claimer_, 4).empty());
}

TEST_F(RedisQueueTest, ExpiredEntriesAreReportedNotClaimed) {
  ASSERT_TRUE(Enqueue(Request("late-1", 2, -1'000)).status.ok());
  ASSERT_TRUE(Enqueue(Request("ok-1", 0, 1'000)).status.ok());
  ASSERT_TRUE(Enqueue(Request("late-2", 0, -10)).status.ok());
  ASSERT_TRUE(Enqueue(Request("ok-2", 1, 2'000)).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 2);
  EXPECT_EQ(Ids(batch.requests), (std::vector<std::string>{"ok-1", "ok-2"}));
  EXPECT_EQ(Ids(batch.expired), (std::vector<std::string>{"late-1", "late-2"}));
  // Expired entries are leased: completing them (504) answers them once.
  std::vector<WireResult> results;
  for (const WireRequest& r : batch.expired) {
    WireResult w;
    w.id = r.id;
    w.code = ErrorCode::kDeadlineExceeded;
    results.push_back(w);
  }
  Result<RedisBatchClaimer::CompleteResult> c = claimer_->Complete(results);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->answered, 2u);
}

TEST_F(RedisQueueTest, FullQueueAndDuplicatesAreRejected) {
  RedisQueueClient::Options q;
  q.connection = connection_.get();
  q.tier_count = 3;
  q.capacity = 2;
  queue_ = std::move(RedisQueueClient::Create(q)).value();
  ASSERT_TRUE(Enqueue(Request("a", 0, 1'000)).status.ok());
  RedisQueueClient::EnqueueResult dup = Enqueue(Request("a", 0, 1'000));
  EXPECT_EQ(dup.status.code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(Enqueue(Request("b", 0, 1'000)).status.ok());
  RedisQueueClient::EnqueueResult full = Enqueue(Request("c", 0, 1'000));
  EXPECT_EQ(full.status.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(full.queue_full);
  EXPECT_EQ(full.depth, 2u);
  // A tier bound below the capacity sheds that tier first.
  ClaimNow(*claimer_, 1);
  RedisQueueClient::EnqueueOptions bounded;
  bounded.tier_depth_limit = 1;
  EXPECT_EQ(Enqueue(Request("free", 0, 1'000), bounded).status.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Enqueue(Request("ent", 2, 1'000)).status.ok());
}

TEST_F(RedisQueueTest, WaitsForAFullerBatchUpToMaxDelay) {
  RedisBatchClaimer::ClaimOptions wait_or_full;
  wait_or_full.max_batch = 8;
  wait_or_full.min_batch = 4;
  wait_or_full.max_batch_delay_us = 60'000'000;  // long: only "full" can trigger
  ASSERT_TRUE(Enqueue(Request("r0", 0, 5'000)).status.ok());
  Result<RedisBatchClaimer::Batch> waiting = claimer_->TryClaim(wait_or_full);
  ASSERT_TRUE(waiting.ok());
  EXPECT_TRUE(waiting->empty());
  EXPECT_EQ(waiting->depth, 1u);
  EXPECT_GT(waiting->wait_us, 0);
  EXPECT_LE(waiting->wait_us, 5'000'000);  // capped by the head's deadline
  EXPECT_GT(waiting->oldest_arrival_us, 0);
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(Enqueue(Request("r" + std::to_string(i), 0, 5'000)).status.ok());
  }
  Result<RedisBatchClaimer::Batch> full = claimer_->TryClaim(wait_or_full);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->requests.size(), 4u);

  // With a short delay, a lone request is claimed once it has waited.
  wait_or_full.max_batch_delay_us = 20'000;
  ASSERT_TRUE(Enqueue(Request("lone", 0, 5'000)).status.ok());
  Result<RedisBatchClaimer::Batch> lone = claimer_->Claim(wait_or_full, milliseconds(2'000));
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(Ids(lone->requests), std::vector<std::string>{"lone"});
}

TEST_F(RedisQueueTest, BlockedClaimerWakesOnEnqueue) {
  std::optional<Result<RedisBatchClaimer::Batch>> claimed;
  SteadyTime::time_point woke_at;
  Latch done;
  std::thread worker([&] {
    RedisBatchClaimer::ClaimOptions o;
    o.max_batch = 8;
    claimed.emplace(claimer_->Claim(o, milliseconds(5'000)));
    woke_at = SteadyTime::now();
    done.Signal();
  });
  // Wait (bounded) until the worker is blocked in BLPOP on the server.
  bool blocked = false;
  for (int i = 0; i < 2'000 && !blocked; ++i) {
    ReplyResult clients = connection_->Call({"CLIENT", "LIST"});
    ASSERT_TRUE(clients.ok());
    blocked = clients->str.find("cmd=blpop") != std::string::npos;
    if (!blocked) std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(blocked);
  const auto enqueued_at = SteadyTime::now();
  ASSERT_TRUE(Enqueue(Request("wake-me", 1, 2'000)).status.ok());
  ASSERT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  worker.join();
  ASSERT_TRUE(claimed->ok());
  EXPECT_EQ(Ids((*claimed)->requests), std::vector<std::string>{"wake-me"});
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(woke_at - enqueued_at);
  // Enqueue round trip + wake + claim round trip on loopback: about 1 ms.
  EXPECT_LT(latency.count(), 50'000) << "woke " << latency.count() << " us after the enqueue";
  RecordProperty("wake_latency_us", std::to_string(latency.count()));
  EXPECT_GE(claimer_->stats().wakeups, 1u);
}

TEST_F(RedisQueueTest, CompletePublishesOneMessagePerGatewayPerBatch) {
  std::mutex mu;
  std::map<std::string, std::vector<WireResult>> received;
  Latch results;
  auto on = [&](const std::string& gw) {
    return [&, gw](WireResult&& r) {
      {
        std::lock_guard lock(mu);
        received[gw].push_back(std::move(r));
      }
      results.Signal();
    };
  };
  auto gw_a = NewListener("gw-a", on("gw-a"));
  auto gw_b = NewListener("gw-b", on("gw-b"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(Enqueue(Request("a" + std::to_string(i), 0, 2'000, "gw-a")).status.ok());
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(Enqueue(Request("b" + std::to_string(i), 2, 2'000, "gw-b")).status.ok());
  ASSERT_TRUE(Enqueue(Request("orphan", 1, 2'000, "gw-gone")).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 16);
  ASSERT_EQ(batch.requests.size(), 6u);
  std::vector<WireResult> answers;
  for (const WireRequest& r : batch.requests) answers.push_back(Answer(r, "out-" + r.id));
  Result<RedisBatchClaimer::CompleteResult> c = claimer_->Complete(answers);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 6u);
  EXPECT_EQ(c->messages, 3u);  // gw-a, gw-b, gw-gone
  EXPECT_EQ(c->dropped, 1u);   // nobody listens on gw-gone
  EXPECT_EQ(claimer_->stats().dropped_results, 1u);
  ASSERT_TRUE(results.WaitFor(5, milliseconds(5'000)));
  std::lock_guard lock(mu);
  ASSERT_EQ(received["gw-a"].size(), 3u);
  ASSERT_EQ(received["gw-b"].size(), 2u);
  EXPECT_EQ(gw_a->subscriber().stats().messages, 1u);  // one message per batch
  EXPECT_EQ(gw_b->subscriber().stats().messages, 1u);
  for (const WireResult& r : received["gw-a"]) {
    EXPECT_EQ(r.output, "out-" + r.id);
    EXPECT_EQ(r.id[0], 'a');
  }
  // Done means gone: the payloads and meta records are deleted.
  ReplyResult left = connection_->Call({"HLEN", KeySpace().Payloads(kModel)});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->integer, 0);
}

TEST_F(RedisQueueTest, ReapedRequestIsAnsweredExactlyOnce) {
  std::mutex mu;
  std::map<std::string, int> answers;
  Latch results;
  auto listener = NewListener("gw-a", [&](WireResult&& r) {
    {
      std::lock_guard lock(mu);
      ++answers[r.id + ":" + r.output];
    }
    results.Signal();
  });
  auto worker_a = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  auto worker_b = claimer_.get();
  ASSERT_TRUE(Enqueue(Request("r1", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch a = ClaimNow(*worker_a, 8);
  ASSERT_EQ(Ids(a.requests), std::vector<std::string>{"r1"});

  // Worker A "hangs"; its lease runs out and the reaper re-queues r1.
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  RedisBatchClaimer::Batch b = ClaimNow(*worker_b, 8);
  ASSERT_EQ(Ids(b.requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(b.requests[0].attempts, 1u);

  // A wakes up and completes first: its answer wins; B's is stale.
  Result<RedisBatchClaimer::CompleteResult> from_a =
      worker_a->Complete({Answer(a.requests[0], "A")});
  ASSERT_TRUE(from_a.ok());
  EXPECT_EQ(from_a->answered, 1u);
  Result<RedisBatchClaimer::CompleteResult> from_b =
      worker_b->Complete({Answer(b.requests[0], "B")});
  ASSERT_TRUE(from_b.ok());
  EXPECT_EQ(from_b->answered, 0u);
  EXPECT_EQ(from_b->stale, 1u);

  // Second case: A completes while r2 waits re-queued; the queued copy is
  // removed with the answer, so nobody claims it again.
  ASSERT_TRUE(Enqueue(Request("r2", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch a2 = ClaimNow(*worker_a, 8);
  ASSERT_EQ(Ids(a2.requests), std::vector<std::string>{"r2"});
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  ASSERT_TRUE(worker_a->Complete({Answer(a2.requests[0], "A")}).ok());
  EXPECT_TRUE(ClaimNow(*worker_b, 8).empty());

  // A sentinel answered after both: once it arrives, everything before it
  // has been delivered (one connection, in order).
  ASSERT_TRUE(Enqueue(Request("sentinel", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch s = ClaimNow(*worker_b, 8);
  ASSERT_TRUE(worker_b->Complete({Answer(s.requests[0], "S")}).ok());
  ASSERT_TRUE(results.WaitFor(3, milliseconds(5'000)));
  std::lock_guard lock(mu);
  EXPECT_EQ(answers, (std::map<std::string, int>{{"r1:A", 1}, {"r2:A", 1}, {"sentinel:S", 1}}));
}

TEST_F(RedisQueueTest, RenewExtendsTheLeasesStillHeldAndNothingElse) {
  ASSERT_TRUE(Enqueue(Request("held", 0, 10'000)).status.ok());
  ASSERT_TRUE(Enqueue(Request("done", 0, 10'001)).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"held", "done"}));
  Result<RedisBatchClaimer::CompleteResult> completed =
      claimer_->Complete({Answer(batch.requests[1], "x")});
  ASSERT_TRUE(completed.ok() && completed->answered == 1u);
  const std::string leases = KeySpace().Leases(kModel);
  auto lease_of = [&](const std::string& id) {
    ReplyResult r = connection_->Call({"ZSCORE", leases, id});
    return r.ok() && !r->is_nil() ? std::stoll(r->str) : int64_t{-1};
  };
  const int64_t before = lease_of("held");
  ASSERT_GT(before, 0);
  Latch renewed;
  Result<int64_t> extended = Internal("no reply");
  claimer_->RenewAsync({"held", "done", "never-claimed"}, [&](Result<int64_t> n) {
    extended = std::move(n);
    renewed.Signal();
  });
  ASSERT_TRUE(renewed.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(extended.ok()) << extended.status().ToString();
  EXPECT_EQ(*extended, 1);
  EXPECT_GT(lease_of("held"), before);  // now + lease, from a later now
  EXPECT_EQ(lease_of("done"), -1);      // answered: not leased again
  EXPECT_EQ(lease_of("never-claimed"), -1);
}

TEST_F(RedisQueueTest, RequeuedRequestPastItsDispatchDeadlineIsClaimedNotExpired) {
  auto lost_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  ASSERT_TRUE(Enqueue(Request("r1", 0, 10'000)).status.ok());
  ASSERT_EQ(Ids(ClaimNow(*lost_worker, 8).requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  // Its dispatch deadline passes while it is re-queued.
  ReplyResult moved = connection_->Call({"ZADD", KeySpace().Queue(kModel, 0), "XX", "1", "r1"});
  ASSERT_TRUE(moved.ok() && !moved->is_error());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  EXPECT_TRUE(batch.expired.empty());
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(batch.requests[0].attempts, 1u);
}

TEST_F(RedisQueueTest, RetryBudgetThenDeadLetterAndGatewayIsTold) {
  Latch told;
  std::optional<WireResult> failure;
  auto listener = NewListener("gw-a", [&](WireResult&& r) {
    failure = std::move(r);
    told.Signal();
  });
  auto dying_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);
  ASSERT_TRUE(Enqueue(Request("doomed", 1, 60'000)).status.ok());
  // The first claim and two retries all lose their lease.
  for (uint32_t attempt = 0; attempt <= 2; ++attempt) {
    RedisBatchClaimer::Batch batch = ClaimNow(*dying_worker, 4);
    ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"doomed"}) << "attempt " << attempt;
    EXPECT_EQ(batch.requests[0].attempts, attempt);
    RedisReaper::Outcome reaped = ReapUntilSomething();
    if (attempt < 2) {
      EXPECT_EQ(reaped.requeued, 1u);
    } else {
      EXPECT_EQ(reaped.dead_lettered, 1u);
      EXPECT_EQ(reaped.requeued, 0u);
    }
  }
  EXPECT_TRUE(ClaimNow(*dying_worker, 4).empty());
  ASSERT_TRUE(told.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(failure->id, "doomed");
  EXPECT_EQ(failure->code, ErrorCode::kBackendError);  // the client gets 502
  EXPECT_EQ(failure->reason, "worker_lost");
  ReplyResult dead = connection_->Call({"LRANGE", KeySpace().Dead(kModel), "0", "-1"});
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->elements.size(), 1u);
  EXPECT_NE(dead->elements[0].str.find("\"id\":\"doomed\""), std::string::npos);
  EXPECT_NE(dead->elements[0].str.find("\"attempts\":3"), std::string::npos);
  EXPECT_NE(dead->elements[0].str.find("\"in\":\"input of doomed\""), std::string::npos);
  // Any gateway serves it, decoded like a worker's dead letter.
  auto shared =
      std::move(RedisDeadLetters::Create({connection_.get(), KeySpace(), {kModel}, 10})).value();
  std::optional<Result<DeadLetterPage>> page;
  Latch read;
  shared->ReadNewest(10, [&](Result<DeadLetterPage> p) {
    page = std::move(p);
    read.Signal();
  });
  ASSERT_TRUE(read.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(page->ok()) << page->status().ToString();
  ASSERT_EQ((*page)->entries.size(), 1u);
  const DeadLetter& d = (*page)->entries[0];
  EXPECT_EQ(d.request_id, "doomed");
  EXPECT_EQ(d.model, kModel);
  EXPECT_EQ(d.key_id, "key-1");
  EXPECT_EQ(d.tier, "paid");
  EXPECT_EQ(d.input, "input of doomed");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.last_error,
            "lease expired: the worker holding it stopped renewing (lease_expired, gateway gw-a)");
  EXPECT_EQ((*page)->total, 1u);
  // A late completion by the dead worker changes nothing.
  Result<RedisBatchClaimer::CompleteResult> late =
      dying_worker->Complete({Answer(Request("doomed", 1, 0), "late")});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->stale, 1u);
}

// Workers' dead letters go to their model's list; a gateway reads every
// model's, newest first, with the counts; the cap keeps the newest.
TEST_F(RedisQueueTest, SharedDeadLettersAreCappedAndReadNewestFirstAcrossModels) {
  auto shared =
      std::move(RedisDeadLetters::Create({connection_.get(), KeySpace(), {kModel, "other"}, 3}))
          .value();
  const std::chrono::system_clock::time_point t0(  // whole µs, as stored
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch()));
  for (int i = 0; i < 5; ++i) {
    DeadLetter d;
    d.request_id = "r" + std::to_string(i);
    d.model = i % 2 == 0 ? kModel : "other";
    d.key_id = "key-1";
    d.tier = "free";
    d.input = "ввод " + std::to_string(i);
    d.attempts = 3;
    d.last_error = "backend said no";
    d.last_backend = "http:m/0";
    d.at = t0 + std::chrono::milliseconds(i);
    shared->Push(d);
  }
  std::optional<Result<DeadLetterPage>> page;
  Latch read;
  shared->ReadNewest(4, [&](Result<DeadLetterPage> p) {
    page = std::move(p);
    read.Signal();
  });
  ASSERT_TRUE(read.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(page->ok()) << page->status().ToString();
  std::vector<std::string> ids;
  for (const DeadLetter& d : (*page)->entries) ids.push_back(d.request_id);
  // llama holds r0, r2, r4 (cap 3), other r1, r3: the newest four overall.
  EXPECT_EQ(ids, (std::vector<std::string>{"r4", "r3", "r2", "r1"}));
  EXPECT_EQ((*page)->size, 5u);
  EXPECT_EQ((*page)->total, 5u);
  EXPECT_EQ((*page)->dropped, 0u);
  const DeadLetter& newest = (*page)->entries[0];
  EXPECT_EQ(newest.input, "ввод 4");
  EXPECT_EQ(newest.last_error, "backend said no");
  EXPECT_EQ(newest.last_backend, "http:m/0");
  EXPECT_EQ(newest.attempts, 3);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(newest.at - t0).count(), 4'000);

  DeadLetter more = (*page)->entries[0];
  more.request_id = "r5";
  shared->Push(more);  // llama's fourth: the oldest (r0) goes
  Latch again;
  shared->ReadNewest(10, [&](Result<DeadLetterPage> p) {
    page = std::move(p);
    again.Signal();
  });
  ASSERT_TRUE(again.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(page->ok());
  EXPECT_EQ((*page)->size, 5u);
  EXPECT_EQ((*page)->total, 6u);
  EXPECT_EQ((*page)->dropped, 1u);
  EXPECT_EQ((*page)->entries.back().request_id, "r1");
  EXPECT_EQ(shared->push_errors(), 0u);
}

// The complete step settles each answered request's token charge on its
// key's limit (what the single process does in Finish): tokens charged at
// enqueue (input + max_tokens) and not used come back, a failure uses none.
TEST_F(RedisQueueTest, CompleteGivesBackTheTokensNotUsed) {
  RedisQueueClient::EnqueueOptions limited;
  limited.rate_limit = RedisQueueClient::RateLimitCheck{"key-1", RateLimitPolicy{0, 100}, 60};
  auto request = [&](const std::string& id) {
    WireRequest r = Request(id, 1, 10'000);
    r.charged_tokens = 60;
    r.tokens_per_minute = 100;
    return r;
  };
  ASSERT_TRUE(Enqueue(request("a"), limited).status.ok());
  // 60 of 100 tokens per minute are taken: another 60 do not fit.
  EXPECT_EQ(Enqueue(request("b"), limited).status.code(), ErrorCode::kRateLimited);

  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"a"});
  EXPECT_EQ(batch.requests[0].tokens_per_minute, 100);     // carried to the worker
  WireResult answer = Answer(batch.requests[0], "short");  // 3 tokens used
  answer.charged_key_id = "key-1";
  answer.charged_tokens = 60;
  answer.tokens_per_minute = 100;
  Result<RedisBatchClaimer::CompleteResult> done = claimer_->Complete({answer});
  ASSERT_TRUE(done.ok() && done->answered == 1u);
  // 57 came back: 60 more fit now (3 + 60 <= 100), and then nothing else.
  RedisQueueClient::EnqueueResult c = Enqueue(request("c"), limited);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.rate_limit->tokens.remaining, 37);

  // A failed request uses none: its whole charge comes back.
  batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"c"});
  WireResult failed;
  failed.id = "c";
  failed.code = ErrorCode::kBackendError;
  failed.message = "backend failed";
  failed.charged_key_id = "key-1";
  failed.charged_tokens = 60;
  failed.tokens_per_minute = 100;
  ASSERT_TRUE(claimer_->Complete({failed}).ok());
  RedisQueueClient::EnqueueResult d = Enqueue(request("d"), limited);
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.rate_limit->tokens.remaining, 37);
  // A stale completion (answered already) settles nothing twice.
  ASSERT_TRUE(claimer_->Complete({failed}).ok());
  EXPECT_EQ(Enqueue(request("e"), limited).status.code(), ErrorCode::kRateLimited);
}

TEST_F(RedisQueueTest, ClaimFailsFastWhenRedisIsDown) {
  server_->Stop();
  const auto start = SteadyTime::now();
  RedisBatchClaimer::ClaimOptions o;
  Result<RedisBatchClaimer::Batch> b = claimer_->Claim(o, milliseconds(5'000));
  EXPECT_EQ(b.status().code(), ErrorCode::kUnavailable);
  EXPECT_LT(SteadyTime::now() - start, milliseconds(1'000));
  const auto enqueue_start = SteadyTime::now();
  EXPECT_EQ(Enqueue(Request("x", 0, 1'000)).status.code(), ErrorCode::kUnavailable);
  EXPECT_LT(SteadyTime::now() - enqueue_start, milliseconds(100));
}

}  // namespace
}  // namespace sluice::redis
