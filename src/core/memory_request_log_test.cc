#include "core/memory_request_log.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

RequestPtr Req(const std::string& id) {
  auto r = std::make_shared<InferenceRequest>();
  r->id = id;
  r->model = "m";
  r->principal = {"key-1", 0, "free", {}};
  return r;
}

TEST(MemoryRequestLogTest, TracksStagesFromQueuedToCompleted) {
  auto log = std::move(MemoryRequestLog::Create({64})).value();
  auto r = Req("req_a");
  log->OnAdmitted(r);
  EXPECT_EQ(log->Lookup("req_a")->stage, RequestStage::kQueued);
  r->MarkDispatched();
  EXPECT_EQ(log->Lookup("req_a")->stage, RequestStage::kProcessing);
  InferenceOutcome ok;
  ok.tokens_used = 7;
  ok.batch_id = 9;
  log->OnFinished(*r, ok, 12.5);
  auto rec = log->Lookup("req_a");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->stage, RequestStage::kCompleted);
  EXPECT_DOUBLE_EQ(rec->latency_ms, 12.5);
  EXPECT_EQ(rec->http_status, 200);
  EXPECT_EQ(rec->key_id, "key-1");
  EXPECT_EQ(rec->batch_id, 9u);
}

TEST(MemoryRequestLogTest, FailuresKeepTheirMessage) {
  auto log = std::move(MemoryRequestLog::Create({64})).value();
  auto r = Req("req_b");
  log->OnAdmitted(r);
  InferenceOutcome bad;
  bad.status = DeadlineExceeded("too late");
  log->OnFinished(*r, bad, 500);
  auto rec = log->Lookup("req_b");
  EXPECT_EQ(rec->stage, RequestStage::kFailed);
  EXPECT_EQ(rec->error, "too late");
  EXPECT_EQ(rec->http_status, 504);
  EXPECT_FALSE(log->Lookup("req_unknown").has_value());
}

TEST(MemoryRequestLogTest, FailuresKeepTheInternalDetailAsValidBoundedUtf8) {
  auto log = std::move(MemoryRequestLog::Create({64})).value();
  auto r = Req("req_c");
  log->OnAdmitted(r);
  InferenceOutcome bad;
  bad.status = BackendError("model 'm' failed after 1 attempt (the backend reported an error)");
  // A backend's text cut in the middle of a character, and very long.
  bad.detail = "http:http://10.0.0.9:9000#1: \xD0\xBE\xD1" + std::string(5'000, 'x');
  log->OnFinished(*r, bad, 7);
  auto rec = log->Lookup("req_c");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->error.rfind("model 'm' failed after 1 attempt (the backend reported an error); "
                             "internal: http:http://10.0.0.9:9000#1: \xD0\xBE\xEF\xBF\xBDxxx",
                             0),
            0u)
      << rec->error.substr(0, 200);
  EXPECT_LE(rec->error.size(), kMaxFailureTextBytes);
  EXPECT_EQ(FailureText(InferenceOutcome{}), "");
}

TEST(MemoryRequestLogTest, ARepeatedIdNeverShadowsTheNewerRequest) {
  auto log = std::move(MemoryRequestLog::Create({64})).value();
  auto old_req = Req("req_same");
  auto new_req = Req("req_same");
  log->OnAdmitted(old_req);
  log->OnAdmitted(new_req);  // the newer request takes the slot
  InferenceOutcome failed;
  failed.status = DeadlineExceeded("old one timed out");
  log->OnFinished(*old_req, failed, 900);
  EXPECT_EQ(log->Lookup("req_same")->stage, RequestStage::kQueued);  // still the new one's
  InferenceOutcome ok;
  ok.batch_id = 4;
  log->OnFinished(*new_req, ok, 10);
  log->OnFinished(*old_req, failed, 900);  // a late finish changes nothing either
  auto rec = log->Lookup("req_same");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->stage, RequestStage::kCompleted);
  EXPECT_EQ(rec->batch_id, 4u);
  EXPECT_EQ(rec->error, "");
}

TEST(MemoryRequestLogTest, MemoryStaysBounded) {
  auto log = std::move(MemoryRequestLog::Create({64})).value();
  for (int i = 0; i < 10'000; ++i) log->OnAdmitted(Req("req_" + std::to_string(i)));
  int kept = 0;
  for (int i = 0; i < 10'000; ++i) kept += log->Lookup("req_" + std::to_string(i)).has_value();
  EXPECT_LE(kept, 64);
  EXPECT_GT(kept, 0);
  EXPECT_TRUE(log->Lookup("req_9999").has_value());  // newest survive
}

}  // namespace
}  // namespace sluice
