#include <gtest/gtest.h>

#include <map>
#include <string>

#include "limits/memory_rate_limiter.h"
#include "limits/rate_limiter.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

std::map<std::string, std::string> Fields(const RateLimitHeaders& h) {
  std::map<std::string, std::string> out;
  h.ForEach([&](std::string_view name, const std::string& value) {
    out.emplace(std::string(name), value);
  });
  return out;
}

RateLimitDecision Allowed(RateLimitState requests, RateLimitState tokens) {
  RateLimitDecision d;
  d.requests = requests;
  d.tokens = tokens;
  return d;
}

TEST(RateLimitHeadersTest, AllowedRequestDescribesTheLimitClosestToExhaustion) {
  // 12/60 requests (20 %) vs 90000/100000 tokens (90 %): requests are closer.
  RateLimitHeaders h = FormatRateLimitHeaders(Allowed({60, 12, 48}, {100000, 90000, 6}));
  EXPECT_EQ(Fields(h), (std::map<std::string, std::string>{
                           {"X-RateLimit-Limit", "60"},
                           {"X-RateLimit-Remaining", "12"},
                           {"X-RateLimit-Reset", "48"},
                           {"RateLimit", "limit=60, remaining=12, reset=48"},
                           {"RateLimit-Policy", "60;w=60, 100000;w=60"},
                       }));
  // 50/60 requests vs 5000/100000 tokens: tokens are closer.
  h = FormatRateLimitHeaders(Allowed({60, 50, 10}, {100000, 5000, 57}));
  EXPECT_EQ(h.ratelimit, "limit=100000, remaining=5000, reset=57");
  EXPECT_EQ(h.limit, "100000");
  EXPECT_TRUE(h.retry_after.empty());
}

TEST(RateLimitHeadersTest, RejectionDescribesTheLimitHitAndCarriesRetryAfter) {
  RateLimitDecision d = Allowed({60, 40, 20}, {1000, 100, 54});
  d.allowed = false;
  d.limited_by = RateLimitKind::kTokens;
  d.retry_after_s = 7;
  RateLimitHeaders h = FormatRateLimitHeaders(d);
  EXPECT_EQ(h.ratelimit, "limit=1000, remaining=100, reset=54");
  EXPECT_EQ(h.retry_after, "7");
  EXPECT_EQ(Fields(h).at("Retry-After"), "7");

  d.retry_after_s = 0;  // never advertise "retry now" on a 429
  EXPECT_EQ(FormatRateLimitHeaders(d).retry_after, "1");
}

TEST(RateLimitHeadersTest, OnlyConfiguredLimitsAppear) {
  RateLimitHeaders h = FormatRateLimitHeaders(Allowed({0, 0, 0}, {5000, 4000, 12}));
  EXPECT_EQ(h.ratelimit_policy, "5000;w=60");
  EXPECT_EQ(h.limit, "5000");
  EXPECT_TRUE(Fields(FormatRateLimitHeaders(RateLimitDecision{})).empty());
  EXPECT_EQ(ReportedLimit(RateLimitDecision{}), RateLimitKind::kNone);
}

TEST(RateLimitHeadersTest, StatusNamesTheLimit) {
  RateLimitDecision d = Allowed({60, 0, 60}, {1000, 1000, 0});
  d.allowed = false;
  d.limited_by = RateLimitKind::kRequests;
  d.retry_after_s = 3;
  Status s = RateLimitStatus(d);
  EXPECT_EQ(s.code(), ErrorCode::kRateLimited);
  EXPECT_EQ(HttpStatusFor(s.code()), 429);
  EXPECT_EQ(s.message(), "requests per minute limit (60) exceeded; retry in 3 s");
  EXPECT_STREQ(RateLimitKindName(d.limited_by), "requests");

  d.limited_by = RateLimitKind::kTokens;
  d.cost_exceeds_limit = true;
  d.token_cost = 1500;
  EXPECT_NE(RateLimitStatus(d).message().find("1500 tokens"), std::string::npos);
}

TEST(RateLimitHeadersTest, FormatsWhatTheLimiterDecided) {
  testing::FakeClock clock;
  MemoryRateLimiter::Options options;
  options.clock = &clock;
  auto limiter = MemoryRateLimiter::Create(options).value();
  const RateLimitPolicy policy{60, 100000};
  for (int i = 0; i < 47; ++i) ASSERT_TRUE(limiter->Check("k", policy, 10)->allowed);
  RateLimitHeaders h = FormatRateLimitHeaders(limiter->Check("k", policy, 10).value());
  EXPECT_EQ(h.ratelimit, "limit=60, remaining=12, reset=48");
  EXPECT_EQ(h.ratelimit_policy, "60;w=60, 100000;w=60");
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(limiter->Check("k", policy, 10)->allowed);
  clock.Set(clock.Now() + std::chrono::milliseconds(200));
  h = FormatRateLimitHeaders(limiter->Check("k", policy, 10).value());
  EXPECT_EQ(h.remaining, "0");
  EXPECT_EQ(h.retry_after, "1");  // 0.8 s rounded up
  EXPECT_EQ(h.reset, "60");       // 59.8 s rounded up
}

}  // namespace
}  // namespace sluice
