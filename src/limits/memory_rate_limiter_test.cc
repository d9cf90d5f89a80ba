#include "limits/memory_rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::seconds;

// "<prefix><n>". Appended rather than written `"k" + std::to_string(n)`:
// GCC 12 at -O3 reports a false -Werror=restrict in that operator+
// (GCC bugs 105329, 105651).
std::string Key(std::string_view prefix, int n) {
  std::string key(prefix);
  key += std::to_string(n);
  return key;
}

class MemoryRateLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<MemoryRateLimiter> Make(MemoryRateLimiter::Options options = {}) {
    options.clock = &clock_;
    auto limiter = MemoryRateLimiter::Create(options);
    EXPECT_TRUE(limiter.ok()) << limiter.status().ToString();
    return std::move(limiter).value();
  }
  RateLimitDecision Check(RateLimiter& limiter, const std::string& key, RateLimitPolicy policy,
                          int64_t tokens = 0) {
    auto d = limiter.Check(key, policy, tokens);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.value();
  }
  void Advance(SteadyClock::duration d) { clock_.Set(clock_.Now() + d); }

  testing::FakeClock clock_;
};

TEST_F(MemoryRateLimiterTest, CreateRejectsBadOptions) {
  MemoryRateLimiter::Options options;
  options.shard_count = 48;
  auto bad = MemoryRateLimiter::Create(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("shard_count"), std::string::npos);

  options = {};
  options.max_tracked_keys = 0;
  EXPECT_FALSE(MemoryRateLimiter::Create(options).ok());
  EXPECT_TRUE(MemoryRateLimiter::Create({}).ok());
}

TEST_F(MemoryRateLimiterTest, RejectsNegativeInputs) {
  auto limiter = Make();
  EXPECT_EQ(limiter->Check("k", {-1, 0}, 0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(limiter->Check("k", {10, 10}, -1).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(MemoryRateLimiterTest, BurstOfOneMinuteThenRefillOverTime) {
  auto limiter = Make();
  const RateLimitPolicy rpm60{60, 0};
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(Check(*limiter, "free-1", rpm60).allowed) << i;
  RateLimitDecision d = Check(*limiter, "free-1", rpm60);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimitKind::kRequests);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_EQ(d.requests.remaining, 0);
  EXPECT_EQ(d.requests.reset_s, 60);

  Advance(seconds(30));  // half a minute refills half the allowance
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(Check(*limiter, "free-1", rpm60).allowed) << i;
  EXPECT_FALSE(Check(*limiter, "free-1", rpm60).allowed);

  Advance(std::chrono::milliseconds(999));
  EXPECT_FALSE(Check(*limiter, "free-1", rpm60).allowed);
  Advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(Check(*limiter, "free-1", rpm60).allowed);

  // Other keys are independent.
  EXPECT_TRUE(Check(*limiter, "free-2", rpm60).allowed);
}

TEST_F(MemoryRateLimiterTest, TokensExhaustedWhileRequestsRemain) {
  auto limiter = Make();
  const RateLimitPolicy policy{60, 1000};
  EXPECT_TRUE(Check(*limiter, "k", policy, 400).allowed);
  EXPECT_TRUE(Check(*limiter, "k", policy, 400).allowed);
  RateLimitDecision d = Check(*limiter, "k", policy, 400);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimitKind::kTokens);
  EXPECT_EQ(d.tokens.remaining, 200);
  EXPECT_EQ(d.requests.remaining, 58);  // the rejected request was not counted
  EXPECT_EQ(d.retry_after_s, 12);       // 200 more tokens at 1000/min
  EXPECT_FALSE(d.cost_exceeds_limit);
  // A cheaper request still fits.
  EXPECT_TRUE(Check(*limiter, "k", policy, 200).allowed);
}

TEST_F(MemoryRateLimiterTest, NeitherLimitIsConsumedOnReject) {
  auto limiter = Make();
  // Requests reject: the tokens are not taken.
  const RateLimitPolicy one_request{1, 1000};
  ASSERT_TRUE(Check(*limiter, "a", one_request, 100).allowed);
  for (int i = 0; i < 5; ++i) {
    RateLimitDecision d = Check(*limiter, "a", one_request, 100);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.limited_by, RateLimitKind::kRequests);
    EXPECT_EQ(d.tokens.remaining, 900);
  }
  // Tokens reject: the request is not counted.
  const RateLimitPolicy small_tokens{10, 100};
  ASSERT_TRUE(Check(*limiter, "b", small_tokens, 100).allowed);
  for (int i = 0; i < 5; ++i) {
    RateLimitDecision d = Check(*limiter, "b", small_tokens, 50);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.limited_by, RateLimitKind::kTokens);
    EXPECT_EQ(d.requests.remaining, 9);
  }
  Advance(seconds(30));
  EXPECT_TRUE(Check(*limiter, "b", small_tokens, 50).allowed);
}

TEST_F(MemoryRateLimiterTest, BothRejectingReportsTheLongerWait) {
  auto limiter = Make();
  const RateLimitPolicy policy{2, 600};
  ASSERT_TRUE(Check(*limiter, "k", policy, 300).allowed);
  ASSERT_TRUE(Check(*limiter, "k", policy, 300).allowed);
  RateLimitDecision d = Check(*limiter, "k", policy, 600);  // requests: 30 s, tokens: 60 s
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimitKind::kTokens);
  EXPECT_EQ(d.retry_after_s, 60);
}

TEST_F(MemoryRateLimiterTest, CostAboveTheTokenLimitNeverFits) {
  auto limiter = Make();
  RateLimitDecision d = Check(*limiter, "k", {60, 1000}, 1001);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.cost_exceeds_limit);
  EXPECT_EQ(d.limited_by, RateLimitKind::kTokens);
  EXPECT_GE(d.retry_after_s, 1);
  EXPECT_EQ(d.requests.remaining, 60);
}

TEST_F(MemoryRateLimiterTest, UnlimitedPolicyKeepsNoState) {
  auto limiter = Make();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(Check(*limiter, "ent", {0, 0}, 5000).allowed);
  EXPECT_EQ(limiter->tracked_keys(), 0u);
  // Only the configured limit applies.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Check(*limiter, "tokens-only", {0, 100}, 1).allowed);
  EXPECT_FALSE(Check(*limiter, "tokens-only", {0, 100}, 1).allowed);
}

TEST_F(MemoryRateLimiterTest, ReconcileRefundsAndChargesTheDifference) {
  auto limiter = Make();
  const RateLimitPolicy policy{0, 1000};
  ASSERT_TRUE(Check(*limiter, "k", policy, 500).allowed);
  limiter->Reconcile("k", policy, 500, 100);  // used 400 fewer: refund
  EXPECT_EQ(Check(*limiter, "k", policy, 0).tokens.remaining, 900);

  ASSERT_TRUE(Check(*limiter, "k", policy, 100).allowed);  // 800 left
  limiter->Reconcile("k", policy, 100, 700);               // used 600 more: charge
  RateLimitDecision d = Check(*limiter, "k", policy, 1);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.tokens.remaining, 199);

  // An extra charge beyond the balance leaves a debt the key waits out.
  limiter->Reconcile("k", policy, 0, 499);  // 199 left -> 300 in debt
  d = Check(*limiter, "k", policy, 100);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.tokens.remaining, 0);
  EXPECT_EQ(d.retry_after_s, 24);  // 400 tokens at 1000/min

  // A refund never lifts the bucket above full.
  Advance(seconds(120));
  limiter->Reconcile("k", policy, 1000, 0);
  EXPECT_EQ(Check(*limiter, "k", policy, 0).tokens.remaining, 1000);
  ASSERT_TRUE(Check(*limiter, "k", policy, 1000).allowed);
  EXPECT_FALSE(Check(*limiter, "k", policy, 1).allowed);
}

TEST_F(MemoryRateLimiterTest, ReconcileWithoutTokenLimitIsANoOp) {
  auto limiter = Make();
  limiter->Reconcile("k", {60, 0}, 10, 10'000);
  EXPECT_EQ(limiter->tracked_keys(), 0u);
  limiter->Reconcile("k", {60, 100}, 50, 10);  // nothing to refund on a full bucket
  EXPECT_EQ(limiter->tracked_keys(), 0u);
}

TEST_F(MemoryRateLimiterTest, IdleKeysAreDroppedOnceFullAgain) {
  MemoryRateLimiter::Options options;
  options.shard_count = 1;
  options.max_tracked_keys = 8;
  auto limiter = Make(options);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Check(*limiter, Key("k", i), {60, 0}).allowed);
  EXPECT_EQ(limiter->tracked_keys(), 8u);

  Advance(std::chrono::milliseconds(500));  // all still owe time: a new key evicts one
  ASSERT_TRUE(Check(*limiter, "new-0", {60, 0}).allowed);
  EXPECT_EQ(limiter->tracked_keys(), 8u);
  EXPECT_EQ(limiter->lossy_evictions(), 1u);

  Advance(seconds(61));  // all full again: forgotten as traffic flows
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Check(*limiter, "hot", {60, 0}).allowed);
  EXPECT_EQ(limiter->tracked_keys(), 1u);
  EXPECT_EQ(limiter->lossy_evictions(), 1u);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Check(*limiter, Key("more-", i), {60, 0}).allowed);
  }
  EXPECT_LE(limiter->tracked_keys(), 8u);
}

TEST_F(MemoryRateLimiterTest, ConcurrentChecksAdmitExactlyTheLimit) {
  auto limiter = Make();  // 64 shards
  constexpr int kThreads = 8;
  constexpr int kKeys = 32;
  constexpr int kChecksPerKeyPerThread = 200;  // 1600 per key against 1000 allowed
  const RateLimitPolicy policy{1000, 50'000};  // 25 tokens each: tokens allow 2000
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kChecksPerKeyPerThread; ++i) {
        for (int k = 0; k < kKeys; ++k) {
          const std::string key = Key("key-", (k + t) % kKeys);
          auto d = limiter->Check(key, policy, 25);
          if (d.ok() && d->allowed) admitted.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), int64_t{kKeys} * 1000);
  EXPECT_EQ(limiter->tracked_keys(), static_cast<size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    RateLimitDecision d = Check(*limiter, Key("key-", k), policy, 25);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.tokens.remaining, 25'000);  // rejected requests took no tokens
  }
}

TEST_F(MemoryRateLimiterTest, CheckAsyncCompletesInline) {
  auto limiter = Make();
  bool called = false;
  limiter->CheckAsync("k", {1, 0}, 0, [&](Result<RateLimitDecision> d) {
    called = true;
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d->allowed);
  });
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace sluice
