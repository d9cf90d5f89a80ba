#include "core/dispatch_group.h"

#include <gtest/gtest.h>

#include "core/memory_queue.h"
#include "testing/fake_backend.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::FakeBackend;
using testing::FakeExecutor;

class DispatchGroupTest : public ::testing::Test {
 protected:
  void Build(size_t slots, size_t max_batch, int64_t delay_us,
             int64_t accel_timeout_us = 3'000'000) {
    auto q = MemoryQueue::Create(
        {1000, QueueOrdering::kEarliestDeadlineFirst, {TierPolicy{"t", 0, 1'000'000}}});
    ASSERT_TRUE(q.ok());
    queue_ = std::move(q).value();
    std::vector<std::unique_ptr<Backend>> backends;
    for (size_t i = 0; i < slots; ++i) {
      auto b = std::make_unique<FakeBackend>("fake" + std::to_string(i));
      fakes_.push_back(b.get());
      backends.push_back(std::move(b));
    }
    DispatchGroup::Options o;
    o.model = "m";
    o.max_batch_size = max_batch;
    o.max_batch_delay_us = delay_us;
    o.accelerator_timeout_us = accel_timeout_us;
    o.expiry_check_interval_us = 1'000;
    o.executor = &ex_;
    o.queue = queue_.get();
    o.router = &router_;
    auto g = DispatchGroup::Create(o, std::move(backends));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    group_ = std::move(g).value();
    group_->Start();
    ex_.RunPending();
  }

  // Pushes a request that must be dispatched within `deadline_ms`.
  RequestPtr Push(const std::string& input, int deadline_ms = 1000) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = input;
    r->arrival = ex_.Now();
    r->dispatch_deadline = r->arrival + milliseconds(deadline_ms);
    r->total_deadline = r->arrival + milliseconds(4000);
    r->set_on_complete([this, input](InferenceOutcome&& o) { outcomes_[input] = std::move(o); });
    EXPECT_TRUE(queue_->Push(r).ok());
    return r;
  }

  FakeExecutor ex_;
  LocalResultRouter router_;
  std::unique_ptr<MemoryQueue> queue_;
  std::vector<FakeBackend*> fakes_;
  std::unique_ptr<DispatchGroup> group_;
  std::map<std::string, InferenceOutcome> outcomes_;
};

TEST_F(DispatchGroupTest, FullBatchDispatchesWithoutWaiting) {
  Build(1, 4, 10'000);
  for (int i = 0; i < 4; ++i) Push("r" + std::to_string(i));
  ex_.RunPending();  // no time passes
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 4u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(outcomes_.size(), 4u);
  EXPECT_EQ(outcomes_["r2"].output, "out:r2");
  EXPECT_EQ(outcomes_["r2"].batch_size, 4u);
  EXPECT_TRUE(outcomes_["r2"].status.ok());
}

TEST_F(DispatchGroupTest, PartialBatchFlushesWhenTheDelayEnds) {
  Build(1, 4, 10'000);
  Push("a");
  Push("b");
  ex_.Advance(Micros(9'999));
  EXPECT_TRUE(fakes_[0]->batches.empty());
  ex_.Advance(Micros(1));
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 2u);
}

TEST_F(DispatchGroupTest, DelayCountsFromTheOldestArrival) {
  Build(1, 4, 10'000);
  Push("first");
  ex_.Advance(milliseconds(10));  // flushes "first" alone; the slot is now busy
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  Push("waiting");
  ex_.Advance(milliseconds(8));
  fakes_[0]->FinishOk();  // slot frees with a request that has waited 8 ms
  ex_.RunPending();
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);
  ex_.Advance(milliseconds(2));
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "waiting");
}

TEST_F(DispatchGroupTest, ZeroDelayDispatchesWhateverIsQueued) {
  Build(1, 64, 0);
  Push("solo");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 1u);
}

TEST_F(DispatchGroupTest, BurstFillsEveryFreeSlotAtOnce) {
  Build(3, 4, 50'000);
  for (int i = 0; i < 10; ++i) Push("r" + std::to_string(i));
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 4u);
  EXPECT_EQ(fakes_[1]->batches[0].size(), 4u);
  EXPECT_TRUE(fakes_[2]->batches.empty());  // 2 left: waiting to fill
  EXPECT_EQ(group_->busy_slots(), 2u);
  ex_.Advance(milliseconds(50));
  ASSERT_EQ(fakes_[2]->batches.size(), 1u);
  EXPECT_EQ(fakes_[2]->batches[0].size(), 2u);
}

TEST_F(DispatchGroupTest, BusySlotPullsNothingUntilItsBatchReturns) {
  Build(1, 2, 1'000);
  Push("a");
  Push("b");
  ex_.RunPending();
  Push("c");
  Push("d");
  ex_.Advance(milliseconds(100));
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1].size(), 2u);
}

TEST_F(DispatchGroupTest, ExpiredRequestsGet504AndNeverReachTheAccelerator) {
  Build(1, 1, 0);
  Push("occupies-slot");
  ex_.RunPending();
  Push("short", /*deadline_ms=*/5);
  ex_.Advance(milliseconds(6));  // the sweep runs while the slot is busy
  ASSERT_EQ(outcomes_.count("short"), 1u);
  EXPECT_EQ(outcomes_["short"].status.code(), ErrorCode::kDeadlineExceeded);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(queue_->Depth(), 0u);
}

TEST_F(DispatchGroupTest, PartialBatchLeavesBeforeTheEarliestDeadline) {
  Build(1, 8, 100'000);
  Push("tight", /*deadline_ms=*/20);
  ex_.Advance(milliseconds(18));
  EXPECT_TRUE(fakes_[0]->batches.empty());
  ex_.Advance(milliseconds(1));  // deadline - deadline_guard_us (1 ms)
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(outcomes_.count("tight"), 0u);  // sent, not expired
}

TEST_F(DispatchGroupTest, PerItemErrorsFailOnlyTheirItems) {
  Build(1, 2, 0);
  Push("good");
  Push("bad");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  BatchResult r;
  r.model_version = "v";
  for (auto& req : fakes_[0]->batches[0]) {
    if (req->input == "bad") {
      r.items.push_back({BackendError("item failed"), "", 0});
    } else {
      r.items.push_back({Status::Ok(), "fine", 2});
    }
  }
  fakes_[0]->Finish(std::move(r));
  ex_.RunPending();
  EXPECT_TRUE(outcomes_["good"].status.ok());
  EXPECT_EQ(outcomes_["bad"].status.code(), ErrorCode::kBackendError);
}

TEST_F(DispatchGroupTest, WrongLengthReplyFailsEveryItemClearly) {
  Build(1, 2, 0);
  Push("a");
  Push("b");
  ex_.RunPending();
  BatchResult r;
  r.items.push_back({Status::Ok(), "only-one", 1});
  fakes_[0]->Finish(std::move(r));
  ex_.RunPending();
  EXPECT_EQ(outcomes_["a"].status.code(), ErrorCode::kBackendError);
  EXPECT_EQ(outcomes_["b"].status.code(), ErrorCode::kBackendError);
}

TEST_F(DispatchGroupTest, HungBatchAnswers504AndIgnoresTheLateReply) {
  Build(1, 1, 0, /*accel_timeout_us=*/50'000);
  Push("slow");
  ex_.RunPending();
  ex_.Advance(milliseconds(50));
  EXPECT_EQ(outcomes_["slow"].status.code(), ErrorCode::kDeadlineExceeded);
  Push("next");
  ex_.RunPending();
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);  // slot still busy: one batch per device
  fakes_[0]->FinishOk();                     // late reply
  ex_.RunPending();
  EXPECT_EQ(outcomes_["slow"].status.code(), ErrorCode::kDeadlineExceeded);
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "next");
}

TEST_F(DispatchGroupTest, DisabledSlotPullsNoWorkUntilEnabled) {
  Build(2, 2, 0);
  ASSERT_TRUE(group_->SetSlotEnabled(0, false));
  EXPECT_FALSE(group_->SetSlotEnabled(7, false));
  ex_.RunPending();
  EXPECT_EQ(group_->enabled_slots(), 1u);
  for (int i = 0; i < 4; ++i) Push("r" + std::to_string(i));
  ex_.RunPending();
  EXPECT_TRUE(fakes_[0]->batches.empty());
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  ASSERT_TRUE(group_->SetSlotEnabled(0, true));
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);  // takes the waiting pair at once
}

TEST_F(DispatchGroupTest, DisablingTheLastFreeSlotStopsCollecting) {
  Build(1, 4, 10'000);
  Push("a");
  ex_.RunPending();
  ASSERT_TRUE(group_->SetSlotEnabled(0, false));
  ex_.Advance(std::chrono::milliseconds(50));
  EXPECT_TRUE(fakes_[0]->batches.empty());
  ASSERT_TRUE(group_->SetSlotEnabled(0, true));
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
}

TEST(DispatchGroupOptionsTest, RejectsBadOptions) {
  FakeExecutor ex;
  LocalResultRouter router;
  auto q = MemoryQueue::Create({10, QueueOrdering::kEarliestDeadlineFirst, {TierPolicy{}}});
  DispatchGroup::Options o;
  o.executor = &ex;
  o.queue = q->get();
  o.router = &router;
  o.max_batch_size = 0;
  std::vector<std::unique_ptr<Backend>> one;
  one.push_back(std::make_unique<FakeBackend>());
  EXPECT_FALSE(DispatchGroup::Create(o, std::move(one)).ok());
  o.max_batch_size = 4;
  EXPECT_FALSE(DispatchGroup::Create(o, {}).ok());
}

}  // namespace
}  // namespace sluice
