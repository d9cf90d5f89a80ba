#include "core/dispatch_group.h"

#include <gtest/gtest.h>

#include "core/dispatch_group_test_fixture.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::FakeBackend;
using testing::FakeExecutor;

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

// With only async work queued, slots that free together take batches that
// end apart, and within a few rounds they finish in turn (full batches, a
// batch / slots apart), so a synchronous request waits less for a slot.
TEST_F(DispatchGroupTest, AsyncOnlyBatchesAreSizedSoSlotsFinishInTurn) {
  Build(2, 32, 0);  // the default cost model: 34 ms + 0.5 ms per item
  PushAsync("a", 900);
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  // The second slot's batch ends 12 ms before the first's (38 vs 50 ms),
  // the farthest a batch of at least 8 can.
  EXPECT_EQ(fakes_[0]->batches[0].size(), 32u);
  EXPECT_EQ(fakes_[1]->batches[0].size(), 8u);

  // Each batch takes what the cost model expects; about 9 rounds.
  std::vector<TimePoint> started = {ex_.Now(), ex_.Now()};
  std::vector<std::vector<TimePoint>> ends(2);
  for (int ms = 1; ms <= 450; ++ms) {
    ex_.Advance(milliseconds(1));
    for (size_t i = 0; i < 2; ++i) {
      const size_t n = fakes_[i]->batches.back().size();
      if (!fakes_[i]->busy() || ex_.Now() - started[i] < Micros(34'000 + 500 * n)) continue;
      ends[i].push_back(ex_.Now());
      fakes_[i]->FinishOk();
      ex_.RunPending();
      started[i] = ex_.Now();
    }
  }
  ASSERT_GE(ends[0].size(), 7u);
  ASSERT_GE(ends[1].size(), 7u);
  ASSERT_GT(queue_->Depth(), 0u);  // async work all along
  // In turn: the last batches are full and end about 25 ms apart.
  EXPECT_EQ(fakes_[0]->batches.back().size(), 32u);
  EXPECT_EQ(fakes_[1]->batches.back().size(), 32u);
  const int64_t apart = std::abs(ToMicros(ends[0].back() - ends[1].back())) % 50'000;
  EXPECT_GE(std::min(apart, 50'000 - apart), 23'000);
}

TEST_F(DispatchGroupTest, ABatchWithSynchronousWorkKeepsIt) {
  Build(2, 32, 0);
  PushAsync("first", 32);
  ex_.RunPending();  // slot 0 takes them all, to end at 50 ms
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  PushAsync("a", 100);
  Push("sync");
  ex_.RunPending();
  // Cut to end apart from slot 0's batch (8: at 38 ms), the sync request in.
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(fakes_[1]->batches[0].size(), 8u);
  EXPECT_EQ(fakes_[1]->batches[0][0]->input, "sync");
}

// While synchronous requests flow (queued, or sent within the last
// second), async work fills a batch only up to async_fill_max_batch_size
// (by default three quarters of max_batch_size): each item of fill would
// lengthen the synchronous requests' ride. Then full batches again.
TEST_F(DispatchGroupTest, WhileSynchronousRequestsFlowAsyncFillStopsAtItsLimit) {
  Build(1, 32, 0);
  PushAsync("a", 200);
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 32u);  // no synchronous request yet
  Push("sync");
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1].size(), 24u);  // 32 * 3/4
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "sync");
  ex_.Advance(milliseconds(999));  // the synchronous request went 999 ms ago
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);
  EXPECT_EQ(fakes_[0]->batches[2].size(), 24u);
  ex_.Advance(milliseconds(1));  // a second ago: no longer flowing
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 4u);
  EXPECT_EQ(fakes_[0]->batches[3].size(), 32u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
}

// The limit is the model's to set, below a quarter of the batch too, and
// the synchronous requests queued go whole beyond it.
TEST_F(DispatchGroupTest, TheAsyncFillLimitIsConfiguredAndNeverCutsSynchronousWork) {
  configure_ = [](DispatchGroup::Options& o) { o.async_fill_max_batch_size = 4; };
  Build(1, 32, 0);
  PushAsync("a", 100);
  for (int i = 0; i < 12; ++i) Push("s" + std::to_string(i));
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 12u);  // every synchronous request, no fill
  Push("s12");
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  ASSERT_EQ(fakes_[0]->batches[1].size(), 4u);  // one synchronous request and 3 of fill
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "s12");
  EXPECT_TRUE(fakes_[0]->batches[1][3]->async);
  fakes_[0]->FinishOk();
  ex_.RunPending();
}

// async_fill_max_batch_size = max_batch_size: no limit, synchronous
// requests flowing or not.
TEST_F(DispatchGroupTest, AnAsyncFillLimitOfTheWholeBatchIsNone) {
  configure_ = [](DispatchGroup::Options& o) { o.async_fill_max_batch_size = 32; };
  Build(1, 32, 0);
  PushAsync("a", 100);
  Push("sync");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0].size(), 32u);
  EXPECT_EQ(fakes_[0]->batches[0][0]->input, "sync");
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1].size(), 32u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
}

TEST_F(DispatchGroupTest, SynchronousRequestsAreNeverCutFromABatch) {
  Build(2, 32, 0);
  PushAsync("first", 32);
  ex_.RunPending();
  PushAsync("a", 100);
  for (int i = 0; i < 20; ++i) Push("s" + std::to_string(i));
  ex_.RunPending();
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  const std::vector<RequestPtr>& batch = fakes_[1]->batches[0];
  ASSERT_GE(batch.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_FALSE(batch[i]->async) << i;
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

TEST_F(DispatchGroupTest, ARequestPastItsOwnDeadlineInFlightFailsAloneAndNeverTheBatch) {
  configure_ = [](DispatchGroup::Options& o) { o.breaker.consecutive_failures = 1; };
  Build(1, 4, 0, /*accel_timeout_us=*/3'000'000);
  Push("hurried", 1000, /*total_ms=*/20);
  Push("patient");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[0]->batches[0].size(), 2u);
  ex_.Advance(milliseconds(25));
  EXPECT_EQ(outcomes_["hurried"].status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_NE(outcomes_["hurried"].status.message().find("while its batch was on the accelerator"),
            std::string::npos);
  EXPECT_EQ(outcomes_.count("patient"), 0u);
  fakes_[0]->FinishOk();  // the batch itself is fine
  ex_.RunPending();
  EXPECT_TRUE(outcomes_["patient"].status.ok());
  EXPECT_EQ(outcomes_["hurried"].status.code(), ErrorCode::kDeadlineExceeded);  // answered once
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kClosed);
  EXPECT_EQ(observer_.retried, 0u);
  EXPECT_TRUE(observer_.changes.empty());
}

TEST_F(DispatchGroupTest, AdaptiveDispatchesALoneRequestAtOnce) {
  configure_ = [](DispatchGroup::Options& o) { o.batching = BatchingMode::kAdaptive; };
  Build(2, 32, /*delay_us=*/20'000);
  for (int i = 0; i < 5; ++i) {  // 20 requests/s: nobody waits for company
    Push("r" + std::to_string(i));
    ex_.RunPending();
    const size_t slot = fakes_[0]->busy() ? 0 : 1;
    ASSERT_TRUE(fakes_[slot]->busy()) << i;
    EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 1u);
    fakes_[slot]->FinishOk();
    ex_.Advance(milliseconds(50));
  }
  EXPECT_EQ(outcomes_.size(), 5u);
}

TEST_F(DispatchGroupTest, AdaptiveWaitsForFullerBatchesOnlyWhileTheLoadNeedsThem) {
  configure_ = [](DispatchGroup::Options& o) { o.batching = BatchingMode::kAdaptive; };
  Build(1, 32, /*delay_us=*/20'000);  // prior: 34 ms + 0.5 ms/item: 640/s at most
  int n = 0;
  // 3 s of load the slot meets only with full batches: 32 requests every
  // 25 ms (1,280/s), each batch taking 25 ms.
  for (int round = 0; round < 120; ++round) {
    for (int i = 0; i < 32; ++i) Push("o" + std::to_string(n++));
    ex_.RunPending();
    ASSERT_TRUE(fakes_[0]->busy());
    EXPECT_EQ(fakes_[0]->batches.back().size(), 32u);
    ex_.Advance(milliseconds(25));
    fakes_[0]->FinishOk();
    ex_.RunPending();
  }
  // The slot keeps up only with full batches: the collector now waits.
  EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 32u);
  const size_t batches = fakes_[0]->batches.size();
  for (int i = 0; i < 5; ++i) Push("w" + std::to_string(i));
  ex_.Advance(milliseconds(10));
  EXPECT_EQ(fakes_[0]->batches.size(), batches);  // waiting for company
  ex_.Advance(milliseconds(10));                  // max_batch_delay_us is the bound
  ASSERT_EQ(fakes_[0]->batches.size(), batches + 1);
  EXPECT_EQ(fakes_[0]->batches.back().size(), 5u);
  fakes_[0]->FinishOk();
  // The load is gone: after a few time constants a lone request goes at once.
  ex_.Advance(std::chrono::seconds(5));
  EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 1u);
  Push("alone");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), batches + 2);
  EXPECT_EQ(fakes_[0]->batches.back().size(), 1u);
}

TEST_F(DispatchGroupTest, SuccessfulBatchesTeachTheCostModel) {
  BatchCostModel::Options c;
  c.max_batch_size = 4;
  c.clock = &ex_.clock();
  auto cost = BatchCostModel::Create(c);
  ASSERT_TRUE(cost.ok());
  BatchCostModel* model = cost->get();
  configure_ = [model](DispatchGroup::Options& o) { o.cost_model = model; };
  Build(1, 4, 0);
  for (int i = 0; i < 4; ++i) Push("r" + std::to_string(i));
  ex_.RunPending();
  ex_.Advance(milliseconds(100));
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_TRUE(model->measured());
  EXPECT_NEAR(model->BatchMicros(4), 100'000, 1);  // 4 items in 100 ms
  Push("x");
  ex_.RunPending();
  FailBatch(0);  // failures are not costs
  EXPECT_NEAR(model->BatchMicros(4), 100'000, 1);
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

TEST_F(DispatchGroupTest, DisablingEverySlotRefusesTheQueueAtOnce) {
  Build(1, 4, 10'000);
  Push("a");
  ex_.RunPending();
  ASSERT_TRUE(group_->SetSlotEnabled(0, false));
  ex_.RunPending();
  EXPECT_TRUE(fakes_[0]->batches.empty());
  EXPECT_EQ(outcomes_["a"].status.code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(outcomes_["a"].reason, "backends_unavailable");
  ASSERT_TRUE(group_->SetSlotEnabled(0, true));
  ex_.RunPending();
  Push("b");
  ex_.Advance(std::chrono::milliseconds(10));
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0][0]->input, "b");
}

TEST_F(DispatchGroupTest, ARequestArrivingWhileEverySlotIsDisabledIsRefusedNotForgotten) {
  Build(2, 4, 10'000);
  ASSERT_TRUE(group_->SetSlotEnabled(0, false));
  ASSERT_TRUE(group_->SetSlotEnabled(1, false));
  ex_.RunPending();
  EXPECT_EQ(group_->batch_room(), 0u);
  Push("late");  // e.g. admission off, or admitted just before the switch
  ex_.Advance(milliseconds(5));
  EXPECT_EQ(outcomes_["late"].status.code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(outcomes_["late"].reason, "backends_unavailable");
  EXPECT_EQ(queue_->Depth(), 0u);
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
  std::vector<std::unique_ptr<Backend>> two;
  two.push_back(std::make_unique<FakeBackend>());
  two.push_back(std::make_unique<FakeBackend>());
  o.slot_endpoints = {0, 2};  // endpoint 1 unused
  EXPECT_FALSE(DispatchGroup::Create(o, std::move(two)).ok());
  o.slot_endpoints.clear();
  o.retry.max_retries = -1;
  std::vector<std::unique_ptr<Backend>> three;
  three.push_back(std::make_unique<FakeBackend>());
  EXPECT_FALSE(DispatchGroup::Create(o, std::move(three)).ok());
  o.retry = RetryPolicy{};
  o.async_fill_max_batch_size = 5;  // beyond max_batch_size 4
  std::vector<std::unique_ptr<Backend>> four;
  four.push_back(std::make_unique<FakeBackend>());
  auto beyond = DispatchGroup::Create(o, std::move(four));
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().message(), "async_fill_max_batch_size must be at most max_batch_size");
}

}  // namespace
}  // namespace sluice
