// Per-key rate limits over real HTTP: a key over its requests-per-minute or
// tokens-per-minute limit gets 429 with the rate-limit headers and a JSON
// error naming the limit, other keys keep working, per-key overrides replace
// the tier's limit, token charges are reconciled with the actual usage, and
// /metrics counts the refusals.
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/sim/sim_model.h"
#include "core/tokens.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// A whole non-negative integer header value, or nullopt.
std::optional<int64_t> IntHeader(const std::map<std::string, std::string>& headers,
                                 const std::string& lower_name) {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  const std::string& v = it->second;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0) return std::nullopt;
  return n;
}
std::optional<int64_t> IntHeader(const Response& r, const std::string& lower_name) {
  return IntHeader(r.headers, lower_name);
}

std::string ErrorReason(std::string_view body) {
  boost::json::value v = ParseJsonOrNull(body);
  const boost::json::value* error = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  return error ? StringField(*error, "reason").value_or("") : "";
}

// Checks a 429 from the limit `limit` (per minute) called `reason`. A
// refused request spends nothing, so what remains is whatever was left: none
// for a request limit; for a token limit, fewer than this request needed.
::testing::AssertionResult IsRateLimited(int status, std::string_view body,
                                         const std::map<std::string, std::string>& headers,
                                         int64_t limit, std::string_view reason) {
  ::testing::AssertionResult error = IsError(status, body, 429, "rate_limited");
  if (!error) return error;
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure() << why << " (429 body " << body << ")";
  };
  if (ErrorReason(body) != reason) return fail("error.reason is not " + std::string(reason));
  std::optional<int64_t> retry_after = IntHeader(headers, "retry-after");
  if (!retry_after || *retry_after < 1 || *retry_after > 60) {
    return fail("Retry-After missing or not whole seconds in 1..60");
  }
  if (IntHeader(headers, "x-ratelimit-limit") != limit) return fail("wrong X-RateLimit-Limit");
  std::optional<int64_t> remaining = IntHeader(headers, "x-ratelimit-remaining");
  if (!remaining || (reason == "requests_per_minute" ? *remaining != 0 : *remaining >= limit)) {
    return fail("wrong X-RateLimit-Remaining");
  }
  if (!IntHeader(headers, "x-ratelimit-reset")) return fail("X-RateLimit-Reset missing");
  return ::testing::AssertionSuccess();
}

// A fast simulated accelerator: the limits, not the device, shape these tests.
TestConfig FastSim() {
  TestConfig config;
  config.devices = 2;
  config.fixed_latency_us = 2'000;
  config.per_item_latency_us = 100;
  config.max_batch_delay_us = 1'000;
  return config;
}

class RateLimitTest : public SluiceTest {
 protected:
  Result<Response> Infer(HttpClient& client, std::string_view key, const std::string& input,
                         std::optional<int> max_tokens = std::nullopt) {
    return client.Post("/v1/inference", InferenceBody(kModel, input, max_tokens), {Bearer(key)});
  }

  std::vector<MetricSample> Samples(HttpClient& client) {
    std::optional<std::string> text = Metrics(client);
    if (!text) return {};
    return ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  }
};

TEST_F(RateLimitTest, FreeKeyOverItsRequestLimitGets429WhileEnterpriseKeepsWorking) {
  TestConfig config = FastSim();
  config.free_tier.requests_per_minute = 5;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();

  // The minute's five requests: each 200 advertises one fewer remaining.
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("free request " + std::to_string(i));
    const std::string input = "free #" + std::to_string(i);
    Result<Response> r = Infer(*client, kFreeKey, input);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(IsCompletion(r->status, r->body, input, kDefaultMaxTokens));
    EXPECT_EQ(r->Header("X-RateLimit-Limit"), "5");
    EXPECT_EQ(IntHeader(*r, "x-ratelimit-remaining"), 4 - i);
    std::optional<int64_t> reset = IntHeader(*r, "x-ratelimit-reset");
    ASSERT_TRUE(reset.has_value()) << r->Header("X-RateLimit-Reset");
    EXPECT_GE(*reset, 1);
    EXPECT_LE(*reset, 60);
    EXPECT_EQ(r->Header("RateLimit"),
              "limit=5, remaining=" + std::to_string(4 - i) + ", reset=" + std::to_string(*reset));
    EXPECT_EQ(r->Header("RateLimit-Policy"), "5;w=60");
    EXPECT_EQ(r->Header("Retry-After"), "") << "only a 429 says when to retry";
  }

  // The sixth: 429 at once, saying which limit and when to retry (5 per
  // minute refill one every 12 s).
  Result<Response> over = Infer(*client, kFreeKey, "free #5");
  ASSERT_TRUE(over.ok()) << over.status().ToString();
  EXPECT_TRUE(IsRateLimited(over->status, over->body, over->headers, 5, "requests_per_minute"));
  EXPECT_LE(IntHeader(*over, "retry-after").value_or(0), 12) << over->Header("Retry-After");
  EXPECT_EQ(over->Header("RateLimit-Policy"), "5;w=60");
  EXPECT_TRUE(over->Header("RateLimit").starts_with("limit=5, remaining=0, reset="))
      << over->Header("RateLimit");

  // Free and enterprise together: the free key stays refused, the enterprise
  // key is served every time.
  constexpr size_t kEach = 20;
  std::vector<LoadRequest> requests;
  requests.reserve(2 * kEach);
  for (size_t i = 0; i < 2 * kEach; ++i) {
    requests.push_back(
        InferenceRequest(i % 2 == 0 ? kFreeKey : kEnterpriseKey, "together #" + std::to_string(i)));
  }
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = 10, .timeout = milliseconds(20'000)}, requests);
  ASSERT_EQ(results.size(), requests.size());
  for (size_t i = 0; i < 2 * kEach; ++i) {
    const LoadResult& r = results[i];
    SCOPED_TRACE("request " + std::to_string(i));
    if (i % 2 == 0) {
      EXPECT_TRUE(IsRateLimited(r.status, r.body, r.headers, 5, "requests_per_minute")) << r.error;
    } else {
      EXPECT_TRUE(
          IsCompletion(r.status, r.body, "together #" + std::to_string(i), kDefaultMaxTokens))
          << r.error;
    }
  }

  // Every refusal is counted, by tier and limit; nothing else is.
  std::vector<MetricSample> samples = Samples(*client);
  ASSERT_FALSE(samples.empty()) << "no /metrics";
  EXPECT_EQ(SumSamples(samples, "sluice_rate_limited_total",
                       {{"tier", "free"}, {"limit", "requests_per_minute"}}),
            1.0 + kEach);
  EXPECT_EQ(SumSamples(samples, "sluice_rate_limited_total",
                       {{"tier", "free"}, {"limit", "tokens_per_minute"}}),
            0.0);
  EXPECT_EQ(SumSamples(samples, "sluice_rate_limited_total", {{"tier", "enterprise"}}).value_or(0),
            0.0);
  EXPECT_EQ(SumSamples(samples, "sluice_requests_total",
                       {{"model", std::string(kModel)}, {"tier", "free"}, {"status", "429"}}),
            1.0 + kEach);
}

TEST_F(RateLimitTest, TokensPerMinuteLimitIsChargedUpFrontAndReconciled) {
  constexpr int64_t kTokensPerMinute = 1'000;
  constexpr int kMaxTokens = 700;
  TestConfig config = FastSim();
  // Slow enough that two requests sent together are both checked before the
  // first one's actual usage comes back.
  config.fixed_latency_us = 200'000;
  config.paid_tier.tokens_per_minute = kTokensPerMinute;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));

  // Inputs the simulator answers briefly, so a reconciled charge is far below
  // the up-front one (input tokens + max_tokens).
  std::vector<std::string> brief;
  for (int i = 0; i < 1'000 && brief.size() < 3; ++i) {
    std::string input = "tokens #" + std::to_string(i);
    if (sim::SimulateCompletion(kModel, input, kMaxTokens).tokens_used <= 40) {
      brief.push_back(std::move(input));
    }
  }
  ASSERT_EQ(brief.size(), 3u) << "no brief inputs found";

  // Two at once, 700 + input tokens each, against 1,000 per minute: one fits.
  std::vector<LoadResult> pair =
      LoadClient::Run({.port = port(), .connections = 2, .timeout = milliseconds(20'000)},
                      {InferenceRequest(kPaidKey, brief[0], kMaxTokens),
                       InferenceRequest(kPaidKey, brief[1], kMaxTokens)});
  ASSERT_EQ(pair.size(), 2u);
  const int served = pair[0].status == 200 ? 0 : 1;
  EXPECT_TRUE(IsCompletion(pair[served].status, pair[served].body, brief[served], kMaxTokens))
      << pair[served].error;
  const LoadResult& refused = pair[1 - served];
  EXPECT_TRUE(IsRateLimited(refused.status, refused.body, refused.headers, kTokensPerMinute,
                            "tokens_per_minute"))
      << refused.error;
  auto policy = refused.headers.find("ratelimit-policy");
  EXPECT_EQ(policy == refused.headers.end() ? "" : policy->second, "1000;w=60");

  // Once the served request's actual usage (<= 40 tokens) replaced its
  // up-front charge (~703), there is room for a 900-token request, which
  // would not fit had the charge stayed.
  auto client = NewClient();
  const int kBig = 900;
  ASSERT_LE(EstimateInputTokens(brief[2]) + kBig + 40, kTokensPerMinute);
  Result<Response> big =
      client->Post("/v1/inference", InferenceBody(kModel, brief[2], kBig), {Bearer(kPaidKey)});
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_TRUE(IsCompletion(big->status, big->body, brief[2], kBig)) << "charge not reconciled?";
  EXPECT_EQ(big->Header("X-RateLimit-Limit"), "1000");

  // A request that costs more than a whole minute's tokens can never pass:
  // a 400 naming the parameter, not a 429 inviting a retry.
  Result<Response> huge =
      client->Post("/v1/inference", InferenceBody(kModel, "huge", 2'000), {Bearer(kPaidKey)});
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  EXPECT_TRUE(IsError(*huge, 400, "invalid_request"));
  EXPECT_NE(huge->body.find("parameters.max_tokens"), std::string::npos) << huge->body;
  EXPECT_EQ(huge->Header("Retry-After"), "");

  std::optional<std::string> text = Metrics(*client);
  ASSERT_TRUE(text.has_value());
  std::vector<MetricSample> samples =
      ParsePrometheusText(*text).value_or(std::vector<MetricSample>{});
  EXPECT_EQ(SumSamples(samples, "sluice_rate_limited_total",
                       {{"tier", "paid"}, {"limit", "tokens_per_minute"}}),
            1.0);
  EXPECT_EQ(SumSamples(samples, "sluice_rate_limited_total",
                       {{"tier", "paid"}, {"limit", "requests_per_minute"}}),
            0.0);
}

// The free tier at 5 requests per minute, and two free keys with overrides:
// one at 8 per minute, one unlimited (0).
constexpr std::string_view kVipKey = "sk-free-vip-0001";
constexpr std::string_view kOpenKey = "sk-free-open-0001";
TestConfig FreeTierWithOverrides() {
  TestConfig config = FastSim();
  config.free_tier.requests_per_minute = 5;
  config.extra_keys.push_back(
      {.id = "free-vip", .tier = "free", .secret = std::string(kVipKey), .requests_per_minute = 8});
  config.extra_keys.push_back({.id = "free-open",
                               .tier = "free",
                               .secret = std::string(kOpenKey),
                               .requests_per_minute = 0});
  return config;
}

TEST_F(RateLimitTest, PerKeyOverrideReplacesTheTierLimit) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(FreeTierWithOverrides()));
  auto client = NewClient();

  // The demo free key, without an override, is at the tier's limit...
  Result<Response> demo = Infer(*client, kFreeKey, "demo");
  ASSERT_TRUE(demo.ok()) << demo.status().ToString();
  EXPECT_EQ(demo->status, 200) << demo->body;
  EXPECT_EQ(demo->Header("X-RateLimit-Limit"), "5");
  EXPECT_EQ(demo->Header("X-RateLimit-Remaining"), "4");
  // ... and a bad request from it counts too, and its error says so.
  Result<Response> bad = client->Post("/v1/inference", "{not json", {Bearer(kFreeKey)});
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_TRUE(IsError(*bad, 400, "invalid_request"));
  EXPECT_EQ(bad->Header("X-RateLimit-Remaining"), "3");
  EXPECT_EQ(bad->Header("RateLimit-Policy"), "5;w=60");

  // The overridden key: 8 per minute instead of the tier's 5, in its own
  // bucket. (Stops at the first wrong answer: the rest would repeat it.)
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("vip request " + std::to_string(i));
    Result<Response> r = Infer(*client, kVipKey, "vip #" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(r->Header("X-RateLimit-Limit"), "8") << "keys[].requests_per_minute not applied";
    EXPECT_EQ(IntHeader(*r, "x-ratelimit-remaining"), 7 - i);
    EXPECT_EQ(r->Header("RateLimit-Policy"), "8;w=60");
  }
  Result<Response> over = Infer(*client, kVipKey, "vip #8");
  ASSERT_TRUE(over.ok()) << over.status().ToString();
  EXPECT_TRUE(IsRateLimited(over->status, over->body, over->headers, 8, "requests_per_minute"));
}

TEST_F(RateLimitTest, PerKeyOverrideOfZeroLiftsTheLimit) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(FreeTierWithOverrides()));
  auto client = NewClient();
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE("open request " + std::to_string(i));
    Result<Response> r = Infer(*client, kOpenKey, "open #" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_EQ(r->Header("X-RateLimit-Limit"), "") << "keys[].requests_per_minute: 0 not applied";
  }
}

}  // namespace
}  // namespace sluice::testing
