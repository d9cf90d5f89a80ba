// The asynchronous API and Idempotency-Key in scale-out: tasks live in
// Redis, so a task taken by one gateway is polled, long-polled and expires
// at another, and an Idempotency-Key repeated at another gateway gets the
// first request's answer without running twice.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "tests/scale_out/scale_out_fixture.h"

namespace sluice::testing::scale_out {
namespace {

class ScaleOutAsyncTest : public ScaleOutTest {
 protected:
  // One worker with one device; each batch takes `latency_us`.
  static TestConfig Config(int64_t latency_us) {
    TestConfig c = FastSim();
    c.devices = 1;
    c.max_batch_delay_us = 0;
    c.fixed_latency_us = latency_us;
    c.per_item_latency_us = 0;
    c.accelerator_timeout_ms = 10'000;
    return c;
  }

  static Response Post(uint16_t port, std::string body, Headers headers,
                       std::string_view key = kPaidKey) {
    headers.push_back(Bearer(key));
    Result<Response> r =
        HttpClient(port, milliseconds(20'000)).Post("/v1/inference", std::move(body), headers);
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }
  static Response Get(uint16_t port, const std::string& target, std::string_view key = kPaidKey) {
    Result<Response> r = HttpClient(port, milliseconds(20'000)).Get(target, {Bearer(key)});
    if (!r.ok()) return Response{0, r.status().ToString(), {}};
    return *r;
  }
  static json::value Body(const Response& r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec ? json::value() : v;
  }
  static std::string Status(const Response& r) {
    json::value v = Body(r);
    const json::value* s = v.is_object() ? v.as_object().if_contains("status") : nullptr;
    return s != nullptr && s->is_string() ? std::string(s->as_string()) : "";
  }
  // Submits `input` asynchronously at `port`; the task id ("" unless 202).
  static std::string Submit(uint16_t port, std::string_view input) {
    Response r = Post(port, InferenceBody(kModel, input), {{"Prefer", "respond-async"}});
    EXPECT_EQ(r.status, 202) << r.body;
    return r.status == 202 ? std::string(Body(r).at("task_id").as_string()) : "";
  }
  // Keys in the test's Redis matching `pattern`.
  size_t RedisKeys(const std::string& pattern) {
    redis::RedisConnection::Options o;
    o.port = redis_.port();
    auto c = redis::RedisConnection::Create(o);
    if (!c.ok()) return SIZE_MAX;
    redis::ReplyResult r = (*c)->Call({"KEYS", pattern});
    return r.ok() && r->type == redis::RedisReply::Type::kArray ? r->elements.size() : SIZE_MAX;
  }
  // The batched items the workers ran.
  double Batched(size_t workers) {
    double sum = 0;
    for (size_t w = 0; w < workers; ++w)
      sum += GatewayMetric(procs_[w]->port(), "sluice_batch_size_sum");
    return sum;
  }
};

TEST_F(ScaleOutAsyncTest, ATaskTakenByOneGatewayIsPolledAtAnother) {
  std::vector<uint16_t> gw = StartCluster(Yaml(Config(1'000'000)), 1, 2);  // 1 s per batch
  ASSERT_EQ(gw.size(), 2u);
  Response accepted =
      Post(gw[0], InferenceBody(kModel, "later please"), {{"Prefer", "respond-async"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::string task_id(Body(accepted).at("task_id").as_string());
  EXPECT_EQ(Body(accepted), json::parse(R"({"task_id":")" + task_id + R"(","status":"PENDING"})"));
  EXPECT_EQ(accepted.Header("Location"), "/v1/result/" + task_id);
  EXPECT_EQ(accepted.Header("Preference-Applied"), "respond-async");

  // At the other gateway: pending now, then the long poll sees the answer.
  Response pending = Get(gw[1], "/v1/result/" + task_id);
  ASSERT_EQ(pending.status, 200) << pending.body;
  EXPECT_EQ(Body(pending), json::parse(R"({"task_id":")" + task_id + R"(","status":"PENDING"})"));
  Response done = Get(gw[1], "/v1/result/" + task_id + "?wait_ms=20000");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Status(done), "SUCCESS") << done.body;
  json::object sync = Body(done).as_object();
  sync.erase("status");
  sync.erase("task_id");
  sync["request_id"] = task_id;
  EXPECT_TRUE(IsCompletion(200, json::serialize(sync), "later please", kDefaultMaxTokens))
      << done.body;
  // Both gateways answer the same.
  EXPECT_EQ(Get(gw[0], "/v1/result/" + task_id).body, done.body);

  // Another key's poll, at either gateway, is exactly an unknown task's.
  const std::string unknown = "req_00000000000000000000000000000000";
  for (uint16_t port : gw) {
    Response other = Get(port, "/v1/result/" + task_id, kFreeKey);
    EXPECT_TRUE(IsError(other, 404, "not_found")) << other.body;
    EXPECT_EQ(Body(other), json::parse(R"({"error":{"code":"not_found","message":"task ')" +
                                       task_id + R"(' not found","request_id":null}})"));
    Response none = Get(port, "/v1/result/" + unknown);
    EXPECT_EQ(Body(none), json::parse(R"({"error":{"code":"not_found","message":"task ')" +
                                      unknown + R"(' not found","request_id":null}})"));
  }
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_created_total"), 1);
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_completed_total"), 1);
  EXPECT_EQ(GatewayMetric(gw[1], "sluice_async_tasks_created_total"), 0);
}

// A task is written before its request is submitted, without holding the
// gateway's I/O thread: a write Redis refuses is answered 503 and runs
// nothing, and the next submission, once Redis takes writes, runs.
TEST_F(ScaleOutAsyncTest, ATaskWriteRedisRefusesIsA503AndRunsNothing) {
  std::vector<uint16_t> gw = StartCluster(Yaml(Config(1'000)), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  // The tasks' keys (it:task:*) become forbidden; everything else stays.
  ASSERT_TRUE(RedisDo({"ACL", "SETUSER", "default", "resetkeys", "~it:{*", "~it:rl*", "~it:idem:*",
                       "~it:cache:*", "~it:collapse:*"}));
  Response refused = Post(gw[0], InferenceBody(kModel, "no room"), {{"Prefer", "respond-async"}});
  ASSERT_EQ(refused.status, 503) << refused.body;
  const std::string id = refused.Header("X-Request-Id");
  EXPECT_EQ(Body(refused),
            json::parse(R"({"error":{"code":"unavailable","message":"the task store (Redis) is )"
                        R"(unavailable; retry later","request_id":")" +
                        id + R"("}})"));
  ASSERT_TRUE(RedisDo({"ACL", "SETUSER", "default", "allkeys"}));
  EXPECT_EQ(Get(gw[0], "/v1/result/" + id).status, 404);
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_created_total"), 0);
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_pending"), 0);

  const std::string task_id = Submit(gw[0], "room now");
  ASSERT_FALSE(task_id.empty());
  Response done = Get(gw[0], "/v1/result/" + task_id + "?wait_ms=20000");
  EXPECT_EQ(Status(done), "SUCCESS") << done.body;
  EXPECT_EQ(Batched(1), 1);  // the refused one never ran
}

TEST_F(ScaleOutAsyncTest, ALongPollAtTheSubmittingGatewayWaitsForTheAnswer) {
  std::vector<uint16_t> gw = StartCluster(Yaml(Config(1'000'000)), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  const std::string task_id = Submit(gw[0], "slow");
  ASSERT_FALSE(task_id.empty());
  EXPECT_EQ(Status(Get(gw[0], "/v1/result/" + task_id + "?wait_ms=50")), "PENDING");
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_pending"), 1);
  Response done = Get(gw[0], "/v1/result/" + task_id + "?wait_ms=20000");
  EXPECT_EQ(Status(done), "SUCCESS") << done.body;
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_tasks_pending"), 0);
}

TEST_F(ScaleOutAsyncTest, AResultExpiresFromRedisAfterItsTimeToLive) {
  TestConfig c = Config(1'000);
  c.async_result_ttl_ms = 1'000;  // long enough for a remote long poll (every 25 ms) to see it
  std::vector<uint16_t> gw = StartCluster(Yaml(c), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  const std::string task_id = Submit(gw[0], "short-lived");
  ASSERT_FALSE(task_id.empty());
  ASSERT_EQ(Status(Get(gw[1], "/v1/result/" + task_id + "?wait_ms=20000")), "SUCCESS");
  ASSERT_TRUE(PollUntil([&] { return Get(gw[1], "/v1/result/" + task_id).status == 404; },
                        milliseconds(5'000), milliseconds(50)));
  EXPECT_EQ(Get(gw[0], "/v1/result/" + task_id).status, 404);
  EXPECT_EQ(RedisKeys("it:task:*"), 0u);
}

// An async backlog larger than the queue waits at the gateway, which feeds
// it to Redis as the devices take work: it is all accepted and answered,
// and synchronous requests sent meanwhile find room in the queue.
TEST_F(ScaleOutAsyncTest, AnAsyncBacklogWaitsAtTheGatewayAndLeavesTheQueueToSyncRequests) {
  TestConfig c = FastSim();
  c.devices = 1;
  c.max_batch_size = 8;
  c.fixed_latency_us = 20'000;
  c.queue_capacity = 40;
  std::vector<uint16_t> gw = StartCluster(Yaml(c), 1, 1);
  ASSERT_EQ(gw.size(), 1u);
  std::vector<LoadRequest> backlog;
  for (int i = 0; i < 200; ++i) {
    backlog.push_back(InferenceRequest(kPaidKey, "bulk-" + std::to_string(i), std::nullopt,
                                       {{"Prefer", "respond-async"}}));
  }
  std::vector<LoadResult> accepted = LoadClient::Run({.port = gw[0], .connections = 8}, backlog);
  ASSERT_EQ(accepted.size(), 200u);
  // All accepted, five times what the queue holds: the rest waited here.
  for (const LoadResult& r : accepted) ASSERT_EQ(r.status, 202) << r.body;
  std::vector<LoadResult> sync =
      LoadClient::Run({.port = gw[0], .connections = 4}, Requests("now-", 20, kEnterpriseKey));
  for (size_t i = 0; i < sync.size(); ++i) {
    EXPECT_TRUE(
        IsCompletion(sync[i].status, sync[i].body, "now-" + std::to_string(i), kDefaultMaxTokens))
        << sync[i].body;
  }
  ASSERT_TRUE(
      PollUntil([&] { return GatewayMetric(gw[0], "sluice_async_tasks_completed_total") == 200; },
                milliseconds(60'000), milliseconds(50)));
  for (int i : {0, 199}) {
    const std::string task(
        Body(Response{accepted[i].status, accepted[i].body, {}}).at("task_id").as_string());
    Response done = Get(gw[0], "/v1/result/" + task);
    EXPECT_EQ(Status(done), "SUCCESS") << done.body;
  }
  EXPECT_EQ(GatewayMetric(gw[0], "sluice_async_held_requests"), 0);
  EXPECT_EQ(Batched(1), 220);
}

TEST_F(ScaleOutAsyncTest, AnIdempotencyKeyRepeatedAtAnotherGatewayRunsOnce) {
  std::vector<uint16_t> gw = StartCluster(Yaml(Config(500'000)), 1, 2);
  ASSERT_EQ(gw.size(), 2u);
  const std::string body = InferenceBody(kModel, "charge the card once");
  // The repeat reaches the other gateway while the first is on the device,
  // and waits for its answer.
  LoadRequest first = InferenceRequest(kPaidKey, "charge the card once", std::nullopt,
                                       {{"Idempotency-Key", "order-17"}});
  LoadClient original({.port = gw[0], .connections = 1}, {first});
  original.Start();
  ASSERT_TRUE(PollUntil([&] { return GatewayMetric(gw[0], "sluice_async_tasks_pending") == 1; },
                        milliseconds(5'000)));
  Response again = Post(gw[1], body, {{"Idempotency-Key", "order-17"}});
  std::vector<LoadResult> firsts = original.Wait();
  ASSERT_EQ(firsts.size(), 1u);
  ASSERT_TRUE(
      IsCompletion(firsts[0].status, firsts[0].body, "charge the card once", kDefaultMaxTokens))
      << firsts[0].body;
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, firsts[0].body);  // the same answer, request_id included
  EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
  // And once it is done, at either gateway.
  for (uint16_t port : gw)
    EXPECT_EQ(Post(port, body, {{"Idempotency-Key", "order-17"}}).body, firsts[0].body);
  EXPECT_EQ(Batched(1), 1);

  // The same key with another body is refused; another API key's is its own.
  Response other_body =
      Post(gw[1], InferenceBody(kModel, "charge it twice"), {{"Idempotency-Key", "order-17"}});
  EXPECT_TRUE(IsError(other_body, 422, "unprocessable")) << other_body.body;
  EXPECT_EQ(Body(other_body).at("error").at("message").as_string(),
            "Idempotency-Key: already used with a different request body");
  Response other_key = Post(gw[1], body, {{"Idempotency-Key", "order-17"}}, kEnterpriseKey);
  ASSERT_EQ(other_key.status, 200) << other_key.body;
  EXPECT_EQ(other_key.Header("Idempotent-Replayed"), "");
  EXPECT_EQ(Batched(1), 2);

  // An async repeat at the other gateway gets the first one's task.
  const std::string report = InferenceBody(kModel, "report");
  Response a = Post(gw[0], report, {{"Prefer", "respond-async"}, {"Idempotency-Key", "report-1"}});
  Response b = Post(gw[1], report, {{"Prefer", "respond-async"}, {"Idempotency-Key", "report-1"}});
  ASSERT_EQ(a.status, 202) << a.body;
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(Body(a).at("task_id"), Body(b).at("task_id"));
  EXPECT_EQ(b.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(Status(Get(gw[1], "/v1/result/" + std::string(Body(a).at("task_id").as_string()) +
                                  "?wait_ms=20000")),
            "SUCCESS");
  EXPECT_EQ(Batched(1), 3);
}

}  // namespace
}  // namespace sluice::testing::scale_out
