// The result cache over real HTTP (`cache:` of the one model): a repeat is
// answered without a batch and says so, what may be cached, the byte
// budget, and that a hit still counts against the key's request limit.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace json = boost::json;

constexpr std::string_view kTwoPerMinuteKey = "sk-cache-two-per-minute";

class ResultCacheTest : public SluiceTest {
 protected:
  static TestConfig CacheConfig(bool deterministic) {
    TestConfig config;
    config.cache = true;
    config.deterministic = deterministic;
    config.max_batch_delay_us = 0;
    config.fixed_latency_us = 1'000;
    config.extra_keys.push_back({.id = "two-per-minute",
                                 .tier = "paid",
                                 .secret = std::string(kTwoPerMinuteKey),
                                 .requests_per_minute = 2});
    return config;
  }

  Response Post(std::string body, std::string_view key = kPaidKey) {
    auto client = NewClient();
    Result<Response> r = client->Post("/v1/inference", std::move(body), {Bearer(key)});
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }

  // The model's value of a metric; 0 when absent.
  double Metric(std::string_view name) { return ScrapeSum(name, {{"model", std::string(kModel)}}); }

  static json::value Body(const Response& r) { return json::parse(r.body); }
};

TEST_F(ResultCacheTest, ARepeatIsAnsweredFromTheCacheWithoutABatch) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CacheConfig(/*deterministic=*/true)));
  Response first = Post(InferenceBody(kModel, "cache me"));
  ASSERT_TRUE(IsCompletion(first.status, first.body, "cache me", kDefaultMaxTokens));
  EXPECT_EQ(first.Header("X-Cache"), "miss");
  EXPECT_FALSE(Body(first).at("metadata").as_object().contains("cached"));
  EXPECT_EQ(Metric("sluice_batches_total"), 1);

  // The same request from another key: the cache is the model's.
  Response again = Post(InferenceBody(kModel, "cache me"), kFreeKey);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.Header("X-Cache"), "hit");
  json::value a = Body(again), f = Body(first);
  EXPECT_EQ(a.at("output"), f.at("output"));
  EXPECT_EQ(a.at("metadata").at("tokens_used"), f.at("metadata").at("tokens_used"));
  EXPECT_EQ(a.at("metadata").at("model_version").as_string(), kModelVersion);
  EXPECT_TRUE(a.at("metadata").at("cached").as_bool());
  EXPECT_NE(a.at("request_id"), f.at("request_id"));  // its own id
  EXPECT_EQ(again.Header("X-Request-Id"), a.at("request_id").as_string());

  // The default max_tokens sent explicitly is the same request; another
  // max_tokens or input is not.
  Response explicit_default = Post(InferenceBody(kModel, "cache me", kDefaultMaxTokens));
  EXPECT_EQ(explicit_default.Header("X-Cache"), "hit");
  Response other_tokens = Post(InferenceBody(kModel, "cache me", kDefaultMaxTokens + 1));
  EXPECT_TRUE(
      IsCompletion(other_tokens.status, other_tokens.body, "cache me", kDefaultMaxTokens + 1));
  EXPECT_EQ(other_tokens.Header("X-Cache"), "miss");
  Response other_input = Post(InferenceBody(kModel, "cache me too"));
  EXPECT_EQ(other_input.Header("X-Cache"), "miss");

  EXPECT_EQ(Metric("sluice_batches_total"), 3);  // the three misses
  EXPECT_EQ(Metric("sluice_cache_hits_total"), 2);
  EXPECT_EQ(Metric("sluice_cache_misses_total"), 3);
  EXPECT_EQ(Metric("sluice_cache_entries"), 3);
  // Every answer is in the request log, hits included.
  auto client = NewClient();
  Result<Response> looked_up = client->Get(
      "/internal/requests/" + std::string(a.at("request_id").as_string()), {Bearer(kServiceToken)});
  ASSERT_TRUE(looked_up.ok());
  EXPECT_EQ(looked_up->status, 200) << looked_up->body;
}

TEST_F(ResultCacheTest, WithoutDeterministicOnlyTemperatureZeroIsCached) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CacheConfig(/*deterministic=*/false)));
  for (int i = 0; i < 2; ++i) {
    Response r = Post(InferenceBody(kModel, "sampled"));
    ASSERT_TRUE(IsCompletion(r.status, r.body, "sampled", kDefaultMaxTokens));
    EXPECT_EQ(r.Header("X-Cache"), "");  // not cacheable: no header
  }
  const std::string greedy =
      R"({"model":"sluice-sim-small","input":"greedy","parameters":{"temperature":0}})";
  EXPECT_EQ(Post(greedy).Header("X-Cache"), "miss");
  Response hit = Post(greedy);
  EXPECT_EQ(hit.Header("X-Cache"), "hit");
  EXPECT_TRUE(Body(hit).at("metadata").at("cached").as_bool());
  const std::string warm =
      R"({"model":"sluice-sim-small","input":"greedy","parameters":{"temperature":0.7}})";
  EXPECT_EQ(Post(warm).Header("X-Cache"), "");
  EXPECT_EQ(Metric("sluice_batches_total"), 4);
  EXPECT_EQ(Metric("sluice_cache_hits_total"), 1);
}

TEST_F(ResultCacheTest, TheCacheStaysWithinItsByteBudget) {
  TestConfig config = CacheConfig(/*deterministic=*/true);
  // Room for two answers of this size (64-byte key, ~80 bytes of output and
  // version, 160 of bookkeeping), not three.
  config.cache_max_bytes = 700;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  for (int i = 0; i < 5; ++i) {
    Response r = Post(InferenceBody(kModel, "input " + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("X-Cache"), "miss");
  }
  EXPECT_EQ(Metric("sluice_cache_entries"), 2);
  EXPECT_EQ(Metric("sluice_cache_evictions_total"), 3);
  EXPECT_LE(Metric("sluice_cache_bytes"), 700);
  EXPECT_EQ(Post(InferenceBody(kModel, "input 0")).Header("X-Cache"), "miss");  // evicted
  EXPECT_EQ(Post(InferenceBody(kModel, "input 0")).Header("X-Cache"), "hit");
}

TEST_F(ResultCacheTest, AHitCountsAgainstTheKeysRequestLimit) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CacheConfig(/*deterministic=*/true)));
  EXPECT_EQ(Post(InferenceBody(kModel, "limited"), kTwoPerMinuteKey).Header("X-Cache"), "miss");
  EXPECT_EQ(Post(InferenceBody(kModel, "limited"), kTwoPerMinuteKey).Header("X-Cache"), "hit");
  Response third = Post(InferenceBody(kModel, "limited"), kTwoPerMinuteKey);
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_EQ(Body(third).at("error").at("code").as_string(), "rate_limited");
}

}  // namespace
}  // namespace sluice::testing
