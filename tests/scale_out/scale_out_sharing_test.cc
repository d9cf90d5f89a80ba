// The result cache and request collapsing in scale-out: the cache lives in
// Redis, so an answer computed through one gateway is a hit at another; a
// hit is charged to the key's request limit; a cache store that fails is
// bypassed; and identical requests in flight at two gateways at the same
// time run as one accelerator item.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/json.hpp>

#include "tests/scale_out/scale_out_fixture.h"

namespace sluice::testing::scale_out {
namespace {

constexpr std::string_view kTwoPerMinuteKey = "sk-cache-two-per-minute";

class ScaleOutSharingTest : public ScaleOutTest {
 protected:
  static TestConfig CacheConfig() {
    TestConfig c = FastSim();
    c.cache = true;
    c.deterministic = true;
    c.max_batch_delay_us = 0;
    c.extra_keys.push_back({.id = "two-per-minute",
                            .tier = "paid",
                            .secret = std::string(kTwoPerMinuteKey),
                            .requests_per_minute = 2});
    return c;
  }
  // One device taking 2 s per batch: identical requests sent together all
  // arrive while the first one's item waits or runs.
  static TestConfig CollapseConfig() {
    TestConfig c = FastSim();
    c.collapse = true;
    c.deterministic = true;
    c.devices = 1;
    c.max_batch_delay_us = 0;
    c.fixed_latency_us = 2'000'000;
    c.per_item_latency_us = 0;
    c.accelerator_timeout_ms = 8'000;
    c.watch_client_min_queue_depth = 0;  // watch every client
    return c;
  }

  static Response Post(uint16_t port, std::string_view input, std::string_view key = kPaidKey) {
    Result<Response> r = HttpClient(port, milliseconds(20'000))
                             .Post("/v1/inference", InferenceBody(kModel, input), {Bearer(key)});
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }
  static double ModelMetric(uint16_t port, const std::string& name) {
    return GatewayMetric(port, name);
  }
  // Items the first `workers` processes (the workers) ran.
  double Batched(size_t workers) {
    double sum = 0;
    for (size_t w = 0; w < workers; ++w) {
      sum += GatewayMetric(procs_[w]->port(), "sluice_batch_size_sum");
    }
    return sum;
  }
};

TEST_F(ScaleOutSharingTest, AnAnswerComputedThroughOneGatewayIsAHitAtAnother) {
  std::vector<uint16_t> gw = StartCluster(Yaml(CacheConfig()), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  Response first = Post(gw[0], "a popular question");
  ASSERT_TRUE(IsCompletion(first.status, first.body, "a popular question", kDefaultMaxTokens))
      << first.body;
  EXPECT_EQ(first.Header("X-Cache"), "miss");
  // The answer is stored after it is sent.
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_cache_entries") == 1; },
                        milliseconds(5'000)));
  Response hit = Post(gw[1], "a popular question");
  ASSERT_EQ(hit.status, 200) << hit.body;
  EXPECT_EQ(hit.Header("X-Cache"), "hit");
  json::value a = json::parse(first.body), b = json::parse(hit.body);
  EXPECT_EQ(b.at("output"), a.at("output"));
  EXPECT_NE(b.at("request_id"), a.at("request_id"));
  EXPECT_TRUE(b.at("metadata").at("cached").as_bool());
  EXPECT_EQ(Batched(1), 1);  // the hit ran no batch
  EXPECT_EQ(ModelMetric(gw[1], "sluice_cache_hits_total"), 1);
  EXPECT_EQ(ModelMetric(gw[0], "sluice_cache_misses_total"), 1);
  EXPECT_EQ(ModelMetric(gw[1], "sluice_accelerator_items_saved_total"), 1);
}

TEST_F(ScaleOutSharingTest, AHitCountsAgainstTheKeysRequestLimitAtEveryGateway) {
  std::vector<uint16_t> gw = StartCluster(Yaml(CacheConfig()), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  EXPECT_EQ(Post(gw[0], "limited", kTwoPerMinuteKey).Header("X-Cache"), "miss");
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_cache_entries") == 1; },
                        milliseconds(5'000)));
  EXPECT_EQ(Post(gw[1], "limited", kTwoPerMinuteKey).Header("X-Cache"), "hit");
  for (uint16_t port : gw) {
    Response third = Post(port, "limited", kTwoPerMinuteKey);
    EXPECT_TRUE(IsError(third, 429, "rate_limited")) << third.body;
    EXPECT_EQ(third.Header("X-RateLimit-Limit"), "2");
    EXPECT_EQ(third.Header("X-RateLimit-Remaining"), "0");
  }
}

TEST_F(ScaleOutSharingTest, ACacheStoreThatFailsIsBypassed) {
  std::vector<uint16_t> gw = StartCluster(Yaml(CacheConfig()), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  // The cache's keys (it:cache:*) become forbidden; everything else stays.
  ASSERT_TRUE(RedisDo({"ACL", "SETUSER", "default", "resetkeys", "~it:{*", "~it:rl*", "~it:task:*",
                       "~it:idem:*", "~it:collapse:*"}));
  for (int i = 0; i < 2; ++i) {
    Response r = Post(gw[0], "while the cache is down");
    EXPECT_TRUE(IsCompletion(r.status, r.body, "while the cache is down", kDefaultMaxTokens))
        << r.body;
    EXPECT_EQ(r.Header("X-Cache"), "miss");
  }
  EXPECT_EQ(Batched(1), 2);
  // Each lookup failed, and each store.
  EXPECT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_cache_failures_total") == 4; },
                        milliseconds(5'000)))
      << ModelMetric(gw[0], "sluice_cache_failures_total");
  EXPECT_EQ(ModelMetric(gw[0], "sluice_cache_hits_total"), 0);

  ASSERT_TRUE(RedisDo({"ACL", "SETUSER", "default", "allkeys"}));
  EXPECT_EQ(Post(gw[0], "while the cache is down").Header("X-Cache"), "miss");
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_cache_entries") == 1; },
                        milliseconds(5'000)));
  EXPECT_EQ(Post(gw[0], "while the cache is down").Header("X-Cache"), "hit");
  EXPECT_EQ(Batched(1), 3);
}

TEST_F(ScaleOutSharingTest, AHundredIdenticalRequestsAtTwoGatewaysRunAsOneAcceleratorItem) {
  std::vector<uint16_t> gw = StartCluster(Yaml(CollapseConfig()), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  // The first one's item is queued before the rest arrive (else both
  // gateways could each start one at the same instant).
  LoadClient first({.port = gw[0], .connections = 1},
                   {InferenceRequest(kPaidKey, "the same question")});
  first.Start();
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_collapse_waiting_requests") == 1; },
                        milliseconds(5'000)));
  std::vector<LoadRequest> requests(50, InferenceRequest(kPaidKey, "the same question"));
  LoadClient a({.port = gw[0], .connections = 49},
               std::vector<LoadRequest>(49, InferenceRequest(kPaidKey, "the same question")));
  LoadClient b({.port = gw[1], .connections = 50}, requests);
  a.Start();
  b.Start();
  std::vector<LoadResult> results = first.Wait(), ra = a.Wait(), rb = b.Wait();
  results.insert(results.end(), ra.begin(), ra.end());
  results.insert(results.end(), rb.begin(), rb.end());
  ASSERT_EQ(results.size(), 100u);
  std::set<std::string> ids;
  std::string output;
  for (const LoadResult& r : results) {
    ASSERT_TRUE(IsCompletion(r.status, r.body, "the same question", kDefaultMaxTokens)) << r.body;
    json::value v = json::parse(r.body);
    ids.insert(std::string(v.at("request_id").as_string()));
    if (output.empty()) output = v.at("output").as_string();
    EXPECT_EQ(v.at("output").as_string(), output);
  }
  EXPECT_EQ(ids.size(), 100u);  // each under its own id
  EXPECT_EQ(Batched(1), 1);     // one accelerator item
  EXPECT_EQ(ModelMetric(gw[1], "sluice_collapse_gateway_waits_total"), 1);
  EXPECT_EQ(ModelMetric(gw[0], "sluice_collapse_forwarded_answers_total"), 1);
  // A client may read its answer before its gateway has counted it and let
  // go of its group: the counts settle within a moment.
  EXPECT_TRUE(PollUntil(
      [&] {
        return ModelMetric(gw[0], "sluice_accelerator_items_saved_total") +
                   ModelMetric(gw[1], "sluice_accelerator_items_saved_total") ==
               99;
      },
      milliseconds(5'000)));
  for (uint16_t port : gw) {
    EXPECT_TRUE(PollUntil(
        [&] {
          return ModelMetric(port, "sluice_collapse_waiting_requests") == 0 &&
                 ModelMetric(port, "sluice_redis_pending_requests") == 0;
        },
        milliseconds(5'000)))
        << port;
  }
}

TEST_F(ScaleOutSharingTest, AClientThatLeavesTheOwningGatewayDoesNotCancelAnotherGatewaysWait) {
  std::vector<uint16_t> gw = StartCluster(Yaml(CollapseConfig()), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  // Another request holds the one device, so the first one's item waits in
  // the queue when its client leaves: withdrawn, it would never run.
  LoadClient blocker({.port = gw[0], .connections = 1},
                     {InferenceRequest(kPaidKey, "something else")});
  blocker.Start();
  ASSERT_TRUE(PollUntil(
      [&] { return GatewayMetric(procs_[0]->port(), "sluice_worker_requests_claimed_total") == 1; },
      milliseconds(5'000)));
  // The first request, at gateway 0: its item is the one that runs.
  asio::io_context ioc;
  asio::ip::tcp::socket first(ioc);
  SendInference(first, gw[0], "asked twice");
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_collapse_waiting_requests") == 1; },
                        milliseconds(5'000)));
  LoadClient second({.port = gw[1], .connections = 1}, {InferenceRequest(kPaidKey, "asked twice")});
  second.Start();
  ASSERT_TRUE(
      PollUntil([&] { return ModelMetric(gw[1], "sluice_collapse_gateway_waits_total") == 1; },
                milliseconds(5'000)));
  // The first client aborts its connection (RST): its gateway keeps the
  // item, since gateway 1 waits for it.
  first.set_option(asio::socket_base::linger(true, 0));
  first.close();
  ASSERT_TRUE(PollUntil([&] { return ModelMetric(gw[0], "sluice_collapse_waiting_requests") == 0; },
                        milliseconds(5'000)));
  std::vector<LoadResult> rest = second.Wait();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(IsCompletion(rest[0].status, rest[0].body, "asked twice", kDefaultMaxTokens))
      << rest[0].body;
  EXPECT_TRUE(json::parse(rest[0].body).at("metadata").at("collapsed").as_bool());
  ASSERT_EQ(blocker.Wait().size(), 1u);
  EXPECT_EQ(Batched(1), 2);  // the blocker and the kept item
  // The kept item's answer went to gateway 1 (a withdrawn one would have
  // sent a failure, and gateway 1 would have queued its own).
  EXPECT_EQ(ModelMetric(gw[0], "sluice_collapse_forwarded_answers_total"), 1);
}

}  // namespace
}  // namespace sluice::testing::scale_out
