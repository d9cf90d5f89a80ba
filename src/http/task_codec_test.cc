#include "http/task_codec.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace sluice::http {
namespace {

namespace json = boost::json;

HttpRequest WithPrefer(std::initializer_list<const char*> values) {
  HttpRequest r;
  for (const char* v : values) r.insert("Prefer", v);
  return r;
}

TEST(TaskCodecTest, RespondAsyncIsFoundAmongPreferences) {
  EXPECT_TRUE(PrefersRespondAsync(WithPrefer({"respond-async"})));
  EXPECT_TRUE(PrefersRespondAsync(WithPrefer({"Respond-Async"})));
  EXPECT_TRUE(PrefersRespondAsync(WithPrefer({"return=minimal, respond-async; foo=1"})));
  EXPECT_TRUE(PrefersRespondAsync(WithPrefer({"wait=5", " respond-async "})));
  EXPECT_FALSE(PrefersRespondAsync(WithPrefer({})));
  EXPECT_FALSE(PrefersRespondAsync(WithPrefer({"return=representation"})));
  EXPECT_FALSE(PrefersRespondAsync(WithPrefer({"respond-asynchronously"})));
  EXPECT_FALSE(PrefersRespondAsync(WithPrefer({"wait=respond-async"})));
}

TEST(TaskCodecTest, WaitMsIsBounded) {
  int64_t ms = -1;
  ASSERT_TRUE(ParseWaitMs("/v1/result/x", 30'000, &ms).ok());
  EXPECT_EQ(ms, 0);
  ASSERT_TRUE(ParseWaitMs("/v1/result/x?wait_ms=2500", 30'000, &ms).ok());
  EXPECT_EQ(ms, 2500);
  ASSERT_TRUE(ParseWaitMs("/v1/result/x?a=1&wait_ms=30000", 30'000, &ms).ok());
  EXPECT_EQ(ms, 30'000);
  EXPECT_EQ(ParseWaitMs("/v1/result/x?wait_ms=30001", 30'000, &ms).message(),
            "wait_ms: expected an integer from 0 to 30000, got \"30001\"");
  EXPECT_EQ(ParseWaitMs("/v1/result/x?wait_ms=-1", 30'000, &ms).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseWaitMs("/v1/result/x?wait_ms=1s", 30'000, &ms).code(),
            ErrorCode::kInvalidArgument);
}

TEST(TaskCodecTest, EncodesEachState) {
  TaskView pending;
  pending.id = "req_1";
  EXPECT_EQ(json::parse(EncodeTask(pending)),
            json::parse(R"({"task_id":"req_1","status":"PENDING"})"));
  EXPECT_EQ(json::parse(EncodeTaskAccepted("req_1")),
            json::parse(R"({"task_id":"req_1","status":"PENDING"})"));

  InferenceOutcome ok;
  ok.output = "out";
  ok.tokens_used = 7;
  ok.model_version = "m-v1";
  ok.collapsed = true;
  TaskView done{"req_2", true, ToTaskAnswer(ok, 42)};
  EXPECT_EQ(
      json::parse(EncodeTask(done)),
      json::parse(R"({"task_id":"req_2","status":"SUCCESS","output":"out","metadata":)"
                  R"({"tokens_used":7,"latency_ms":42,"model_version":"m-v1","collapsed":true}})"));

  InferenceOutcome failed;
  failed.status = Unavailable("queue for model 'm' is full");
  failed.reason = "queue_full";
  TaskView refused{"req_3", true, ToTaskAnswer(failed, 3)};
  EXPECT_EQ(json::parse(EncodeTask(refused)),
            json::parse(R"({"task_id":"req_3","status":"FAILED","error":{"code":"unavailable",)"
                        R"("message":"queue for model 'm' is full","http_status":503,)"
                        R"("reason":"queue_full"}})"));
}

}  // namespace
}  // namespace sluice::http
