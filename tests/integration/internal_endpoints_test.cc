// The operator's endpoints over real HTTP: /internal/health,
// /internal/requests/{id} and /metrics, and that each needs the service token.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

class InternalEndpointsTest : public SluiceTest {
 protected:
  // GET /internal/health with the token; a null value on any failure.
  boost::json::value Health(HttpClient& client) {
    Result<Response> r = client.Get("/internal/health", {Bearer(kServiceToken)});
    if (!r.ok() || r->status != 200) return nullptr;
    return r->Json();
  }
};

TEST_F(InternalEndpointsTest, HealthReportsStatusAndLoad) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  auto client = NewClient();
  Result<Response> r = client->Get("/internal/health", {Bearer(kServiceToken)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(r->Header("Content-Type").starts_with("application/json"));
  boost::json::value v = r->Json();
  EXPECT_EQ(StringField(v, "status"), "healthy") << r->body;
  std::optional<double> utilization = NumberField(v, "gpu_utilization");
  ASSERT_TRUE(utilization.has_value()) << r->body;
  EXPECT_GE(*utilization, 0.0);
  EXPECT_LE(*utilization, 1.0);
  EXPECT_EQ(NumberField(v, "queue_depth"), 0.0) << r->body;
  std::optional<double> rps = NumberField(v, "requests_per_second");
  ASSERT_TRUE(rps.has_value()) << r->body;
  EXPECT_GE(*rps, 0.0);

  // After some traffic the request rate shows it (it may lag by a window).
  constexpr int kRequests = 40;
  std::vector<LoadRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    requests.push_back(InferenceRequest(kPaidKey, "rate " + std::to_string(i)));
  }
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = 10, .timeout = milliseconds(30'000)}, requests);
  for (const LoadResult& lr : results) ASSERT_EQ(lr.status, 200) << lr.body << lr.error;
  double seen_rps = 0;
  PollUntil(
      [&] {
        seen_rps = NumberField(Health(*client), "requests_per_second").value_or(0);
        return seen_rps > 0;
      },
      milliseconds(5'000));
  EXPECT_GT(seen_rps, 0.0) << "requests_per_second stayed 0 after " << kRequests << " requests";
}

TEST_F(InternalEndpointsTest, HealthShowsABusyAccelerator) {
  TestConfig config;
  config.devices = 1;
  config.max_batch_size = 1;
  config.fixed_latency_us = 400'000;
  config.per_item_latency_us = 0;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));

  // Keep the only device busy for about two seconds.
  std::vector<LoadRequest> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(InferenceRequest(kPaidKey, std::to_string(i)));
  LoadClient load({.port = port(), .connections = 5, .timeout = milliseconds(30'000)}, requests);
  load.Start();

  auto client = NewClient();
  double utilization = 0;
  int64_t max_depth = 0;
  PollUntil(
      [&] {
        boost::json::value v = Health(*client);
        utilization = std::max(utilization, NumberField(v, "gpu_utilization").value_or(0));
        max_depth = std::max<int64_t>(max_depth, NumberField(v, "queue_depth").value_or(0));
        return (utilization > 0 && max_depth > 0) || load.responses_received() == 5;
      },
      milliseconds(5'000));
  EXPECT_GT(utilization, 0.0) << "gpu_utilization while the only device is busy";
  EXPECT_LE(utilization, 1.0);
  EXPECT_GT(max_depth, 0) << "queue_depth while 4 requests wait for the device";
  for (const LoadResult& lr : load.Wait()) EXPECT_EQ(lr.status, 200) << lr.body << lr.error;
}

TEST_F(InternalEndpointsTest, RequestRecordOfACompletedRequest) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  auto client = NewClient();
  Result<Response> r =
      client->Post("/v1/inference", InferenceBody(kModel, "remember me"), {Bearer(kFreeKey)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(IsCompletion(r->status, r->body, "remember me", kDefaultMaxTokens));
  std::string id = StringField(r->Json(), "request_id").value_or("");

  boost::json::value record = WaitForFinalRecord(*client, id);
  std::string text = boost::json::serialize(record);
  EXPECT_EQ(StringField(record, "status"), "completed") << text;
  std::optional<double> latency = NumberField(record, "latency_ms");
  ASSERT_TRUE(latency.has_value()) << text;
  EXPECT_GE(*latency, 0.0);
  ASSERT_TRUE(record.is_object());
  const boost::json::value* error = record.as_object().if_contains("error");
  ASSERT_NE(error, nullptr) << "no \"error\" field: " << text;
  EXPECT_TRUE(error->is_null()) << text;
}

TEST_F(InternalEndpointsTest, UnknownRequestIdIs404) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  auto client = NewClient();
  Result<Response> r = client->Get("/internal/requests/req_0123456789abcdef0123456789abcdef",
                                   {Bearer(kServiceToken)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(IsError(*r, 404, "not_found"));
}

TEST_F(InternalEndpointsTest, InternalEndpointsNeedTheServiceToken) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  auto client = NewClient();
  for (const char* target :
       {"/internal/health", "/internal/requests/req_0123456789abcdef0123456789abcdef",
        "/metrics"}) {
    SCOPED_TRACE(target);
    Result<Response> none = client->Get(target);
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_TRUE(IsError(*none, 401, "unauthenticated")) << "no token";

    Result<Response> wrong = client->Get(target, {Bearer("svc-wrong-token")});
    ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
    EXPECT_TRUE(IsError(*wrong, 401, "unauthenticated")) << "wrong token";

    // A customer's API key is not the service token.
    Result<Response> api_key = client->Get(target, {Bearer(kEnterpriseKey)});
    ASSERT_TRUE(api_key.ok()) << api_key.status().ToString();
    EXPECT_TRUE(IsError(*api_key, 401, "unauthenticated") ||
                IsError(*api_key, 403, "permission_denied"))
        << "API key: " << api_key->status << " " << api_key->body;
  }
  // And the token itself works.
  Result<Response> ok = client->Get("/metrics", {Bearer(kServiceToken)});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
}

}  // namespace
}  // namespace sluice::testing
