#include "core/async_backlog.h"

#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

// A queue whose depth the test sets; it records what it takes.
class DepthQueue final : public FrontDoorQueue {
 public:
  Status Push(RequestPtr req) override {
    pushed.push_back(std::move(req));
    return Status::Ok();
  }
  size_t Depth() const override { return depth; }
  size_t QueuedAhead(TierIndex, TimePoint) const override { return depth; }
  void Withdraw(const RequestPtr& req) override { withdrawn.push_back(req); }

  size_t depth = 0;
  std::vector<RequestPtr> pushed, withdrawn;
};

class AsyncBacklogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AsyncBacklog::Options o;
    o.queue = &queue_;
    o.executor = &ex_;
    o.max_held = 3;
    o.release_below = [this] { return below_; };
    o.tick = Micros(5'000);
    o.refresh_depth = [this] { ++refreshes_; };
    backlog_ = std::move(AsyncBacklog::Create(o)).value();
  }
  // A request due in `priority_ms`, total deadline `total_ms` from now.
  RequestPtr Req(bool async, int64_t priority_ms, int64_t total_ms = 60'000) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = "r" + std::to_string(next_++);
    r->async = async;
    r->arrival = ex_.Now();
    r->priority_deadline = r->dispatch_deadline = ex_.Now() + milliseconds(priority_ms);
    r->total_deadline = ex_.Now() + milliseconds(total_ms);
    r->set_on_complete([this, id = r->id](InferenceOutcome&& o) { answers_[id] = o.status; });
    return r;
  }

  testing::FakeExecutor ex_;
  DepthQueue queue_;
  size_t below_ = 0;
  int next_ = 0;
  int refreshes_ = 0;
  std::map<std::string, Status> answers_;
  std::unique_ptr<AsyncBacklog> backlog_;
};

TEST_F(AsyncBacklogTest, SynchronousRequestsPassAndAsyncOnesWaitForAShallowQueue) {
  ASSERT_TRUE(backlog_->Push(Req(false, 100)).ok());
  EXPECT_EQ(queue_.pushed.size(), 1u);
  ASSERT_TRUE(backlog_->Push(Req(true, 9'000)).ok());  // r1
  ASSERT_TRUE(backlog_->Push(Req(true, 5'000)).ok());  // r2: earlier
  ASSERT_TRUE(backlog_->Push(Req(true, 7'000)).ok());  // r3
  EXPECT_EQ(backlog_->AsyncDepth(), 3u);
  EXPECT_EQ(backlog_->Depth(), 3u);
  // A later async request waits behind the backlog; a synchronous one not.
  EXPECT_EQ(backlog_->QueuedAhead(0, ex_.Now() + milliseconds(9'500)), 3u);
  EXPECT_EQ(backlog_->QueuedAhead(0, ex_.Now() + milliseconds(200)), 0u);
  ex_.Advance(milliseconds(20));
  EXPECT_EQ(queue_.pushed.size(), 1u);  // nothing may be released yet
  EXPECT_EQ(refreshes_, 4);             // each tick asked for a fresh depth

  // Room for two: the two earliest go, in order.
  queue_.depth = 3;
  below_ = 5;
  ex_.Advance(milliseconds(5));
  ASSERT_EQ(queue_.pushed.size(), 3u);
  EXPECT_EQ(queue_.pushed[1]->id, "r2");
  EXPECT_EQ(queue_.pushed[2]->id, "r3");
  EXPECT_EQ(backlog_->stats().released, 2u);
  EXPECT_EQ(backlog_->AsyncDepth(), 1u);
  queue_.depth = 1;
  ex_.Advance(milliseconds(5));
  EXPECT_EQ(queue_.pushed.size(), 4u);
  EXPECT_EQ(backlog_->stats().held, 0u);
  EXPECT_TRUE(answers_.empty());
}

TEST_F(AsyncBacklogTest, HeldRequestsAreBoundedAnsweredAtTheirDeadlineAndWhenWithdrawn) {
  RequestPtr a = Req(true, 100, /*total_ms=*/50);
  RequestPtr b = Req(true, 100);
  ASSERT_TRUE(backlog_->Push(a).ok());
  ASSERT_TRUE(backlog_->Push(b).ok());
  ASSERT_TRUE(backlog_->Push(Req(true, 100)).ok());
  Status full = backlog_->Push(Req(true, 100));
  EXPECT_EQ(full.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(full.message(), "too many asynchronous requests wait at this gateway (3); retry later");

  ex_.Advance(milliseconds(60));
  ASSERT_TRUE(answers_.count("r0"));
  EXPECT_EQ(answers_["r0"].code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(backlog_->stats().expired, 1u);

  b->Cancel();
  backlog_->Withdraw(b);
  EXPECT_EQ(answers_["r1"].code(), ErrorCode::kCancelled);
  EXPECT_TRUE(queue_.withdrawn.empty());
  // One the backlog does not hold is the queue's to withdraw.
  RequestPtr sync = Req(false, 100);
  ASSERT_TRUE(backlog_->Push(sync).ok());
  backlog_->Withdraw(sync);
  EXPECT_EQ(queue_.withdrawn.size(), 1u);
}

TEST_F(AsyncBacklogTest, CloseAnswersTheHeldAndRefusesMore) {
  ASSERT_TRUE(backlog_->Push(Req(true, 100)).ok());
  backlog_->Close();
  EXPECT_EQ(answers_["r0"].code(), ErrorCode::kUnavailable);
  EXPECT_EQ(backlog_->Push(Req(true, 100)).code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(backlog_->Push(Req(false, 100)).ok());  // the queue decides
}

}  // namespace
}  // namespace sluice
