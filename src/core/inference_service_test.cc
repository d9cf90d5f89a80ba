#include "core/inference_service.h"

#include <gtest/gtest.h>

#include "core/memory_queue.h"
#include "core/memory_request_log.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tiers_ = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000},
              TierPolicy{"enterprise", 2, 400'000, 2'000'000, 4'000'000}};
    queue_ =
        std::move(MemoryQueue::Create({2, QueueOrdering::kEarliestDeadlineFirst, tiers_})).value();
    log_ = std::move(MemoryRequestLog::Create({64})).value();
    InferenceService::Options o;
    o.tiers = tiers_;
    o.models = {{"m", "m-v1", 100, 16, queue_.get()}};
    o.log = log_.get();
    o.clock = &ex_.clock();
    service_ = std::move(InferenceService::Create(o)).value();
  }
  RequestPtr Req(TierIndex tier, int max_tokens = 0) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = "req_" + std::to_string(next_++);
    r->principal.tier = tier;
    r->model = "m";
    r->params.max_tokens = max_tokens;
    return r;
  }
  testing::FakeExecutor ex_;
  std::vector<TierPolicy> tiers_;
  std::unique_ptr<MemoryQueue> queue_;
  std::unique_ptr<MemoryRequestLog> log_;
  std::unique_ptr<InferenceService> service_;
  int next_ = 0;
};

TEST_F(InferenceServiceTest, DeadlinesComeFromTheTier) {
  auto r = Req(1);
  ASSERT_TRUE(service_->Submit(r, 0).ok());
  EXPECT_EQ(r->dispatch_deadline - r->arrival, milliseconds(400));
  EXPECT_EQ(r->total_deadline - r->arrival, milliseconds(4000));
  EXPECT_EQ(r->params.max_tokens, 16);  // model default
}

TEST_F(InferenceServiceTest, ClientMayShortenButNotLengthen) {
  auto shorter = Req(0);
  ASSERT_TRUE(service_->Submit(shorter, 100'000).ok());
  EXPECT_EQ(shorter->dispatch_deadline - shorter->arrival, milliseconds(100));
  EXPECT_EQ(shorter->total_deadline - shorter->arrival, milliseconds(100));
  auto longer = Req(1);
  ASSERT_TRUE(service_->Submit(longer, 60'000'000).ok());
  EXPECT_EQ(longer->dispatch_deadline - longer->arrival, milliseconds(400));
  EXPECT_EQ(longer->total_deadline - longer->arrival, milliseconds(4000));
}

TEST_F(InferenceServiceTest, MaxTokensOverTheModelLimitIsRejected) {
  Status s = service_->Submit(Req(0, 101), 0);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("parameters.max_tokens"), std::string::npos);
  EXPECT_EQ(queue_->Depth(), 0u);
}

TEST_F(InferenceServiceTest, FullQueueAndShutdownAreUnavailable) {
  ASSERT_TRUE(service_->Submit(Req(0), 0).ok());
  ASSERT_TRUE(service_->Submit(Req(0), 0).ok());
  EXPECT_EQ(service_->Submit(Req(0), 0).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(service_->TotalQueueDepth(), 2u);
  service_->BeginShutdown();
  EXPECT_EQ(service_->Submit(Req(0), 0).code(), ErrorCode::kUnavailable);
}

TEST_F(InferenceServiceTest, FindsModelsByName) {
  EXPECT_EQ(service_->FindModel("m"), 0);
  EXPECT_EQ(service_->FindModel("nope"), -1);
}

}  // namespace
}  // namespace sluice
