// The asynchronous API and Idempotency-Key over real HTTP: 202 and a task,
// polls and long polls, another key's 404, expiry, and repeats that never
// run twice.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "testing/load_client.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

class AsyncApiTest : public SluiceTest {
 protected:
  // One device; each batch takes `latency_us`.
  static TestConfig Config(int64_t latency_us) {
    TestConfig config;
    config.devices = 1;
    config.max_batch_delay_us = 0;
    config.fixed_latency_us = latency_us;
    config.per_item_latency_us = 0;
    config.accelerator_timeout_ms = 10'000;
    return config;
  }

  Response Post(std::string body, Headers headers, std::string_view key = kPaidKey) {
    headers.push_back(Bearer(key));
    Result<Response> r = NewClient()->Post("/v1/inference", std::move(body), headers);
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }
  Response Get(const std::string& target, std::string_view key = kPaidKey) {
    Result<Response> r = NewClient(milliseconds(20'000))->Get(target, {Bearer(key)});
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }
  // Submits `input` asynchronously; the task id (fatal failure unless 202).
  std::string Submit(std::string_view input) {
    Response r = Post(InferenceBody(kModel, input), {{"Prefer", "respond-async"}});
    EXPECT_EQ(r.status, 202) << r.body;
    return r.status == 202 ? std::string(json::parse(r.body).at("task_id").as_string()) : "";
  }
  double Metric(std::string_view name) { return ScrapeSum(name); }
  static json::value Body(const Response& r) { return json::parse(r.body); }
};

TEST_F(AsyncApiTest, ASubmissionIsAcceptedAndItsResultPolled) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(Config(1'000)));
  Response accepted = Post(InferenceBody(kModel, "later please"), {{"Prefer", "respond-async"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  json::value a = Body(accepted);
  const std::string task_id(a.at("task_id").as_string());
  EXPECT_TRUE(IsRequestId(task_id));
  EXPECT_EQ(a, json::parse(R"({"task_id":")" + task_id + R"(","status":"PENDING"})"));
  EXPECT_EQ(accepted.Header("Location"), "/v1/result/" + task_id);
  EXPECT_EQ(accepted.Header("Preference-Applied"), "respond-async");
  EXPECT_EQ(accepted.Header("X-Request-Id"), task_id);

  Response done = Get("/v1/result/" + task_id + "?wait_ms=10000");
  ASSERT_EQ(done.status, 200) << done.body;
  json::value d = Body(done);
  EXPECT_EQ(d.at("task_id").as_string(), task_id);
  EXPECT_EQ(d.at("status").as_string(), "SUCCESS");
  // The output the synchronous API gives for the same input.
  json::object sync = d.as_object();
  sync.erase("status");
  sync.erase("task_id");
  sync["request_id"] = task_id;
  EXPECT_TRUE(IsCompletion(200, json::serialize(sync), "later please", kDefaultMaxTokens))
      << done.body;
  // Polled again: the same answer, kept.
  EXPECT_EQ(Get("/v1/result/" + task_id).body, done.body);

  // The body field asks for the same.
  std::string body = R"({"model":")" + std::string(kModel) + R"(","input":"x","async":true})";
  Response by_field = Post(body, {});
  ASSERT_EQ(by_field.status, 202) << by_field.body;
  EXPECT_EQ(by_field.Header("Preference-Applied"), "");
  EXPECT_EQ(Metric("sluice_async_tasks_created_total"), 2);
}

TEST_F(AsyncApiTest, APollWithoutWaitingSeesPendingAndALongPollWaitsForTheAnswer) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(Config(2'000'000)));  // 2 s per batch
  const std::string task_id = Submit("slow");
  ASSERT_FALSE(task_id.empty());
  Response pending = Get("/v1/result/" + task_id);
  ASSERT_EQ(pending.status, 200);
  EXPECT_EQ(Body(pending), json::parse(R"({"task_id":")" + task_id + R"(","status":"PENDING"})"));
  Response still = Get("/v1/result/" + task_id + "?wait_ms=50");
  EXPECT_EQ(Body(still).at("status").as_string(), "PENDING");
  Response done = Get("/v1/result/" + task_id + "?wait_ms=10000");
  EXPECT_EQ(Body(done).at("status").as_string(), "SUCCESS") << done.body;
}

TEST_F(AsyncApiTest, OnlyTheKeyThatSubmittedATaskCanReadIt) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(Config(1'000)));
  const std::string task_id = Submit("mine");
  ASSERT_FALSE(task_id.empty());
  ASSERT_EQ(Body(Get("/v1/result/" + task_id + "?wait_ms=10000")).at("status").as_string(),
            "SUCCESS");
  Response other = Get("/v1/result/" + task_id, kFreeKey);
  EXPECT_TRUE(IsError(other, 404, "not_found")) << other.body;
  EXPECT_EQ(Body(other), json::parse(R"({"error":{"code":"not_found","message":"task ')" + task_id +
                                     R"(' not found","request_id":null}})"));
  // Exactly what an unknown id gets.
  const std::string unknown = "req_00000000000000000000000000000000";
  Response none = Get("/v1/result/" + unknown);
  EXPECT_EQ(Body(none), json::parse(R"({"error":{"code":"not_found","message":"task ')" + unknown +
                                    R"(' not found","request_id":null}})"));
  Response anonymous = NewClient()->Get("/v1/result/" + task_id).value();
  EXPECT_EQ(anonymous.status, 401);
  Response bad_wait = Get("/v1/result/" + task_id + "?wait_ms=999999");
  EXPECT_TRUE(IsError(bad_wait, 400, "invalid_request")) << bad_wait.body;
  EXPECT_EQ(Body(bad_wait).at("error").at("message").as_string(),
            "wait_ms: expected an integer from 0 to 30000, got \"999999\"");
}

TEST_F(AsyncApiTest, AResultExpiresAfterItsTimeToLive) {
  TestConfig config = Config(1'000);
  config.async_result_ttl_ms = 300;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  const std::string task_id = Submit("short-lived");
  ASSERT_FALSE(task_id.empty());
  ASSERT_EQ(Body(Get("/v1/result/" + task_id + "?wait_ms=10000")).at("status").as_string(),
            "SUCCESS");
  ASSERT_TRUE(PollUntil([&] { return Get("/v1/result/" + task_id).status == 404; },
                        milliseconds(5'000), milliseconds(50)));
  EXPECT_EQ(Metric("sluice_async_tasks_expired_total"), 1);
  EXPECT_EQ(Metric("sluice_async_tasks_stored"), 0);
}

TEST_F(AsyncApiTest, ARepeatedIdempotencyKeyGetsTheSameAnswerAndRunsOnce) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(Config(500'000)));
  const std::string body = InferenceBody(kModel, "charge the card once");
  // The repeat arrives while the first is still on the device, and waits.
  LoadRequest first = InferenceRequest(kPaidKey, "charge the card once", std::nullopt,
                                       {{"Idempotency-Key", "order-17"}});
  LoadClient original({.port = port(), .connections = 1}, {first});
  original.Start();
  ASSERT_TRUE(
      PollUntil([&] { return Metric("sluice_async_tasks_pending") == 1; }, milliseconds(5'000)));
  Response again = Post(body, {{"Idempotency-Key", "order-17"}});
  std::vector<LoadResult> firsts = original.Wait();
  ASSERT_EQ(firsts.size(), 1u);
  ASSERT_TRUE(
      IsCompletion(firsts[0].status, firsts[0].body, "charge the card once", kDefaultMaxTokens));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, firsts[0].body);  // the same answer, request_id included
  EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
  // And once it is done.
  Response later = Post(body, {{"Idempotency-Key", "order-17"}});
  EXPECT_EQ(later.body, firsts[0].body);
  EXPECT_EQ(Metric("sluice_batch_size_sum"), 1);

  // The same key with another body is refused; another API key's is its own.
  Response other_body =
      Post(InferenceBody(kModel, "charge it twice"), {{"Idempotency-Key", "order-17"}});
  EXPECT_TRUE(IsError(other_body, 422, "unprocessable")) << other_body.body;
  EXPECT_EQ(Body(other_body).at("error").at("message").as_string(),
            "Idempotency-Key: already used with a different request body");
  Response other_key = Post(body, {{"Idempotency-Key", "order-17"}}, kEnterpriseKey);
  ASSERT_EQ(other_key.status, 200) << other_key.body;
  EXPECT_EQ(other_key.Header("Idempotent-Replayed"), "");
  EXPECT_EQ(Metric("sluice_batch_size_sum"), 2);

  Response bad = Post(body, {{"Idempotency-Key", "has space"}});
  EXPECT_TRUE(IsError(bad, 400, "invalid_request")) << bad.body;
  EXPECT_EQ(Body(bad).at("error").at("message").as_string(),
            "Idempotency-Key: must be 1 to 255 visible ASCII characters");
}

TEST_F(AsyncApiTest, AnAsyncRepeatGetsTheSameTask) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(Config(1'000)));
  const std::string body = InferenceBody(kModel, "report");
  Response a = Post(body, {{"Prefer", "respond-async"}, {"Idempotency-Key", "report-1"}});
  Response b = Post(body, {{"Prefer", "respond-async"}, {"Idempotency-Key", "report-1"}});
  ASSERT_EQ(a.status, 202) << a.body;
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(Body(a).at("task_id"), Body(b).at("task_id"));
  EXPECT_EQ(b.Header("Idempotent-Replayed"), "true");
  const std::string task_id(Body(a).at("task_id").as_string());
  EXPECT_EQ(Body(Get("/v1/result/" + task_id + "?wait_ms=10000")).at("status").as_string(),
            "SUCCESS");
  EXPECT_EQ(Metric("sluice_batch_size_sum"), 1);
}

}  // namespace
}  // namespace sluice::testing
