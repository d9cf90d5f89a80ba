// RedisRateLimiter and the enqueue script's combined check, against a real
// server.
#include "redis/redis_rate_limiter.h"

#include <gtest/gtest.h>

#include <optional>

#include "limits/memory_rate_limiter.h"
#include "redis/hash_slot.h"
#include "redis/queue_client.h"
#include "redis/redis_test_fixture.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;

class RedisRateLimiterTest : public RedisTest {
 protected:
  std::unique_ptr<RedisRateLimiter> NewLimiter(RedisConnection* c) {
    RedisRateLimiter::Options o;
    o.connection = c;
    Result<std::unique_ptr<RedisRateLimiter>> l = RedisRateLimiter::Create(o);
    EXPECT_TRUE(l.ok());
    return std::move(l).value();
  }
};

// A batch decides each key's items in order in one call per slot: with
// key_shards, the states of many keys share a few slots.
TEST_F(RedisRateLimiterTest, BatchDecidesEachKeysItemsInOrderInOneCallPerSlot) {
  RedisRateLimiter::Options o;
  o.connection = connection_.get();
  o.key_shards = 1;  // every key in one slot: one call
  auto limiter = std::move(RedisRateLimiter::Create(o)).value();
  const RedisConnection::Stats before = connection_->stats();
  std::optional<std::vector<Result<RateLimitDecision>>> out;
  Latch done;
  limiter->CheckBatchAsync({{"a", RateLimitPolicy{2, 0}, 1},
                            {"b", RateLimitPolicy{2, 0}, 1},
                            {"a", RateLimitPolicy{2, 0}, 1},
                            {"a", RateLimitPolicy{2, 0}, 1},
                            {"free", RateLimitPolicy{0, 0}, 7},
                            {"a", RateLimitPolicy{-1, 0}, 1}},
                           [&](std::vector<Result<RateLimitDecision>> r) {
                             out = std::move(r);
                             done.Signal();
                           });
  ASSERT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  ASSERT_EQ(out->size(), 6u);
  std::vector<bool> allowed;
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE((*out)[i].ok()) << (*out)[i].status().ToString();
    allowed.push_back((*out)[i]->allowed);
  }
  EXPECT_EQ(allowed, (std::vector<bool>{true, true, true, false, true}));
  EXPECT_EQ((*out)[2]->requests.remaining, 0);
  EXPECT_EQ((*out)[3]->limited_by, RateLimitKind::kRequests);
  EXPECT_EQ((*out)[4]->token_cost, 7);                                       // unlimited: no call
  EXPECT_EQ((*out)[5].status().code(), ErrorCode::kInvalidArgument);         // refused before Redis
  EXPECT_EQ(connection_->stats().commands_sent - before.commands_sent, 2u);  // LOAD + EVALSHA
  // The state is where key_shards puts it.
  ReplyResult state = connection_->Call({"HGET", KeySpace().RateLimitsInShard(0), "a"});
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->is_nil());

  // Settlements batch the same way: 40 of 100 tokens charged come back.
  ASSERT_TRUE(limiter->Check("t", RateLimitPolicy{0, 100}, 100).ok());
  EXPECT_FALSE(limiter->Check("t", RateLimitPolicy{0, 100}, 40)->allowed);
  limiter->ReconcileBatch({{"t", 100, 100, 60}, {"a", 0, 5, 1}});
  Result<RateLimitDecision> after = limiter->Check("t", RateLimitPolicy{0, 100}, 40);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->allowed);
  EXPECT_EQ(limiter->reconcile_errors(), 0u);
}

TEST_F(RedisRateLimiterTest, TwoGatewaysShareOneKeysLimit) {
  auto other_connection = NewConnection();
  ASSERT_TRUE(other_connection->WaitUntilUp(milliseconds(5'000)));
  auto gateway_1 = NewLimiter(connection_.get());
  auto gateway_2 = NewLimiter(other_connection.get());
  const RateLimitPolicy policy{60, 0};
  int allowed = 0;
  std::optional<RateLimitDecision> first_rejection;
  for (int i = 0; i < 100; ++i) {
    RateLimiter& limiter = i % 2 == 0 ? *gateway_1 : *gateway_2;
    Result<RateLimitDecision> d = limiter.Check("key-1", policy, 10);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    if (d->allowed) {
      ++allowed;
    } else if (!first_rejection) {
      first_rejection = *d;
    }
  }
  // A burst of one window's allowance, then one per second: the loop takes
  // well under a second.
  EXPECT_EQ(allowed, 60);
  ASSERT_TRUE(first_rejection.has_value());
  EXPECT_EQ(first_rejection->limited_by, RateLimitKind::kRequests);
  EXPECT_EQ(first_rejection->retry_after_s, 1);
  EXPECT_EQ(first_rejection->requests.limit, 60);
  EXPECT_EQ(first_rejection->requests.remaining, 0);
  EXPECT_EQ(first_rejection->requests.reset_s, 60);
  // Another key is untouched.
  Result<RateLimitDecision> other = gateway_2->Check("key-2", policy, 10);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->allowed);
  EXPECT_EQ(other->requests.remaining, 59);
}

TEST_F(RedisRateLimiterTest, BothLimitsOrNeitherAreConsumed) {
  auto limiter = NewLimiter(connection_.get());
  const RateLimitPolicy policy{10, 100};
  Result<RateLimitDecision> first = limiter->Check("k", policy, 80);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->allowed);
  EXPECT_EQ(first->requests.remaining, 9);
  EXPECT_EQ(first->tokens.remaining, 20);
  Result<RateLimitDecision> second = limiter->Check("k", policy, 80);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->allowed);
  EXPECT_EQ(second->limited_by, RateLimitKind::kTokens);
  EXPECT_EQ(second->requests.remaining, 9);  // the request was not consumed
  EXPECT_GE(second->retry_after_s, 36);      // 60 tokens at 100/min
  Result<RateLimitDecision> third = limiter->Check("k", policy, 10);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->allowed);
  EXPECT_EQ(third->requests.remaining, 8);
  // A cost above the limit can never fit.
  Result<RateLimitDecision> huge = limiter->Check("k", policy, 101);
  ASSERT_TRUE(huge.ok());
  EXPECT_TRUE(huge->cost_exceeds_limit);
  EXPECT_EQ(RateLimitStatus(*huge).code(), ErrorCode::kRateLimited);
}

TEST_F(RedisRateLimiterTest, HeadersMatchTheMemoryLimiter) {
  // The same fresh-key sequence through both limiters gives the same
  // header values (both read "now" once per check; a fresh key is
  // independent of the clock origin).
  auto redis_limiter = NewLimiter(connection_.get());
  auto memory_limiter = std::move(MemoryRateLimiter::Create({})).value();
  const RateLimitPolicy policy{5, 1'000};
  for (int i = 0; i < 7; ++i) {
    Result<RateLimitDecision> r = redis_limiter->Check("same", policy, 150);
    Result<RateLimitDecision> m = memory_limiter->Check("same", policy, 150);
    ASSERT_TRUE(r.ok() && m.ok());
    EXPECT_EQ(r->allowed, m->allowed) << i;
    EXPECT_EQ(r->limited_by, m->limited_by) << i;
    EXPECT_EQ(r->retry_after_s, m->retry_after_s) << i;
    EXPECT_EQ(r->requests.remaining, m->requests.remaining) << i;
    EXPECT_EQ(r->tokens.remaining, m->tokens.remaining) << i;
    EXPECT_EQ(r->tokens.reset_s, m->tokens.reset_s) << i;
  }
}

TEST_F(RedisRateLimiterTest, ReconcileRefundsUnusedTokens) {
  auto limiter = NewLimiter(connection_.get());
  const RateLimitPolicy policy{0, 100};
  ASSERT_TRUE(limiter->Check("k", policy, 100)->allowed);
  EXPECT_FALSE(limiter->Check("k", policy, 50)->allowed);
  limiter->Reconcile("k", policy, /*charged=*/100, /*actual=*/40);
  // Same connection, so the refund runs before the next check.
  Result<RateLimitDecision> after = limiter->Check("k", policy, 50);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->allowed);
  EXPECT_EQ(limiter->reconcile_errors(), 0u);
}

// A key's state is one 16-byte field of the rate-limit hash (both TATs),
// written only when a check consumes; with key_shards, of its shard's hash.
TEST_F(RedisRateLimiterTest, StateIsOneFieldOfTheKeysHash) {
  auto limiter = NewLimiter(connection_.get());
  ASSERT_TRUE(limiter->Check("k", RateLimitPolicy{60, 0}, 1)->allowed);
  ReplyResult len = connection_->Call({"HSTRLEN", KeySpace().RateLimits(), "k"});
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(len->integer, 16);
  ASSERT_TRUE(limiter->Check("over", RateLimitPolicy{0, 10}, 11).ok());  // refused: nothing written
  EXPECT_EQ(connection_->Call({"HEXISTS", KeySpace().RateLimits(), "over"})->AsInt(), 0);

  RedisRateLimiter::Options o;
  o.connection = connection_.get();
  o.key_shards = 4;
  auto sharded = std::move(RedisRateLimiter::Create(o)).value();
  ASSERT_TRUE(sharded->Check("k", RateLimitPolicy{60, 0}, 1)->allowed);
  const std::string shard = KeySpace().RateLimitsInShard(Crc16("k") % 4);
  EXPECT_EQ(connection_->Call({"HSTRLEN", shard, "k"})->AsInt(), 16);
}

// The hash also holds the scripts' mark: an empty field (no key id is
// empty) whose value is longer than hash-max-listpack-value, so that Redis
// keeps the hash a hashtable, where a field lookup is not a linear scan.
// A write restores the mark when it is missing; a refused check and an
// empty key id write nothing.
TEST_F(RedisRateLimiterTest, TheHashKeepsAMarkThatMakesItAHashtable) {
  auto limiter = NewLimiter(connection_.get());
  const std::string hash = KeySpace().RateLimits();
  auto encoding = [&] { return connection_->Call({"OBJECT", "ENCODING", hash})->str; };
  auto mark_len = [&] { return connection_->Call({"HSTRLEN", hash, ""})->AsInt(); };
  Result<RateLimitDecision> empty = limiter->Check("", RateLimitPolicy{60, 0}, 1);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "rate limit: key id must not be empty");
  EXPECT_EQ(connection_->Call({"EXISTS", hash})->AsInt(), 0);

  ASSERT_TRUE(limiter->Check("k", RateLimitPolicy{60, 0}, 1)->allowed);
  EXPECT_EQ(encoding(), "hashtable");
  EXPECT_GT(mark_len(), 64);
  EXPECT_EQ(connection_->Call({"HLEN", hash})->AsInt(), 2);  // "k" and the mark

  // Flushed (a new hash): a refused check leaves it absent, the next
  // consuming check writes the mark again.
  ASSERT_EQ(connection_->Call({"DEL", hash})->AsInt(), 1);
  ASSERT_FALSE(limiter->Check("over", RateLimitPolicy{0, 10}, 11)->allowed);
  EXPECT_EQ(connection_->Call({"EXISTS", hash})->AsInt(), 0);
  ASSERT_TRUE(limiter->Check("k2", RateLimitPolicy{60, 0}, 1)->allowed);
  EXPECT_EQ(encoding(), "hashtable");
  EXPECT_GT(mark_len(), 64);

  // A refund writes it too. The refused check after it (same connection,
  // so it runs after the refund) writes nothing.
  const RateLimitPolicy tokens{0, 1000};
  ASSERT_TRUE(limiter->Check("t", tokens, 100)->allowed);
  ASSERT_EQ(connection_->Call({"HDEL", hash, ""})->AsInt(), 1);
  limiter->Reconcile("t", tokens, /*charged=*/100, /*actual=*/40);
  ASSERT_FALSE(limiter->Check("over", RateLimitPolicy{0, 10}, 11)->allowed);
  EXPECT_GT(mark_len(), 64);
  EXPECT_EQ(limiter->reconcile_errors(), 0u);
}

TEST_F(RedisRateLimiterTest, CheckAsyncAndUnlimited) {
  auto limiter = NewLimiter(connection_.get());
  Latch done;
  std::optional<Result<RateLimitDecision>> got;
  limiter->CheckAsync("k", RateLimitPolicy{1, 0}, 0, [&](Result<RateLimitDecision> d) {
    got.emplace(std::move(d));
    done.Signal();
  });
  ASSERT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(got->ok());
  EXPECT_TRUE((*got)->allowed);
  Result<RateLimitDecision> unlimited = limiter->Check("k", RateLimitPolicy{}, 5);
  ASSERT_TRUE(unlimited.ok());
  EXPECT_TRUE(unlimited->allowed);
  EXPECT_EQ(unlimited->requests.limit, 0);
  EXPECT_EQ(limiter->Check("k", RateLimitPolicy{-1, 0}, 1).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(RedisRateLimiterTest, EnqueueChecksTheLimitInTheSameCall) {
  RedisQueueClient::Options q;
  q.connection = connection_.get();
  q.tier_count = 1;
  q.capacity = 3;
  auto queue = std::move(RedisQueueClient::Create(q)).value();
  auto enqueue = [&](const std::string& id) {
    WireRequest r;
    r.id = id;
    r.gateway_id = "gw";
    r.model = "m";
    r.dispatch_deadline_us = 4'000'000'000'000'000;
    RedisQueueClient::EnqueueOptions o;
    o.rate_limit = RedisQueueClient::RateLimitCheck{"key", RateLimitPolicy{2, 0}, 5};
    Latch done;
    std::optional<RedisQueueClient::EnqueueResult> out;
    queue->Enqueue(r, o, [&](RedisQueueClient::EnqueueResult e) {
      out = std::move(e);
      done.Signal();
    });
    EXPECT_TRUE(done.WaitFor(1, milliseconds(5'000)));
    return std::move(out).value();
  };
  RedisQueueClient::EnqueueResult a = enqueue("a");
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  ASSERT_TRUE(a.rate_limit.has_value());
  EXPECT_EQ(a.rate_limit->requests.remaining, 1);
  ASSERT_TRUE(enqueue("b").status.ok());
  RedisQueueClient::EnqueueResult c = enqueue("c");
  EXPECT_EQ(c.status.code(), ErrorCode::kRateLimited);
  ASSERT_TRUE(c.rate_limit.has_value());
  EXPECT_FALSE(c.rate_limit->allowed);
  EXPECT_EQ(c.rate_limit->retry_after_s, 30);
  EXPECT_EQ(c.depth, 2u);  // not queued
}

TEST_F(RedisRateLimiterTest, FullQueueConsumesNoLimit) {
  RedisQueueClient::Options q;
  q.connection = connection_.get();
  q.tier_count = 1;
  q.capacity = 1;
  auto queue = std::move(RedisQueueClient::Create(q)).value();
  auto enqueue = [&](const std::string& id) {
    WireRequest r;
    r.id = id;
    r.gateway_id = "gw";
    r.model = "m";
    RedisQueueClient::EnqueueOptions o;
    o.rate_limit = RedisQueueClient::RateLimitCheck{"key", RateLimitPolicy{10, 0}, 1};
    Latch done;
    std::optional<RedisQueueClient::EnqueueResult> out;
    queue->Enqueue(r, o, [&](RedisQueueClient::EnqueueResult e) {
      out = std::move(e);
      done.Signal();
    });
    EXPECT_TRUE(done.WaitFor(1, milliseconds(5'000)));
    return std::move(out).value();
  };
  ASSERT_TRUE(enqueue("a").status.ok());
  for (int i = 0; i < 3; ++i) {
    RedisQueueClient::EnqueueResult full = enqueue("x" + std::to_string(i));
    EXPECT_EQ(full.status.code(), ErrorCode::kUnavailable);
    EXPECT_TRUE(full.queue_full);
  }
  auto limiter = NewLimiter(connection_.get());
  Result<RateLimitDecision> d = limiter->Check("key", RateLimitPolicy{10, 0}, 1);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->requests.remaining, 8);  // only "a" and this check
}

}  // namespace
}  // namespace sluice::redis
