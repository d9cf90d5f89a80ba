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
    o.observer = &observer_;
    o.retry_seed = 7;
    // The wait-or-full tests below are about static batching; the adaptive
    // ones switch it back.
    o.batching = BatchingMode::kStatic;
    if (configure_) configure_(o);
    auto g = DispatchGroup::Create(o, std::move(backends));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    group_ = std::move(g).value();
    group_->Start();
    ex_.RunPending();
  }

  // Pushes a request that must be dispatched within `deadline_ms`.
  RequestPtr Push(const std::string& input, int deadline_ms = 1000, int total_ms = 4000) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = input;
    r->arrival = ex_.Now();
    r->dispatch_deadline = r->arrival + milliseconds(deadline_ms);
    r->total_deadline = r->arrival + milliseconds(total_ms);
    r->set_on_complete([this, input](InferenceOutcome&& o) { outcomes_[input] = std::move(o); });
    EXPECT_TRUE(queue_->Push(r).ok());
    return r;
  }

  // Counts what the group reports.
  struct Observer : DispatchObserver {
    void OnRetry(size_t, size_t n) override { retried += n; }
    void OnDeadLetter(size_t n) override { dead += n; }
    void OnBreakerChange(size_t endpoint, BreakerState state) override {
      changes.emplace_back(endpoint, state);
    }
    size_t retried = 0, dead = 0;
    std::vector<std::pair<size_t, BreakerState>> changes;
  };

  // Fails the oldest in-flight batch of slot `i` as a whole.
  void FailBatch(size_t i, const std::string& why = "HTTP 500") {
    BatchResult r;
    r.status = BackendError(why);
    fakes_[i]->Finish(std::move(r));
    ex_.RunPending();
  }

  std::function<void(DispatchGroup::Options&)> configure_;
  Observer observer_;
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
  configure_ = [](DispatchGroup::Options& o) { o.retry.max_retries = 0; };
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
  EXPECT_NE(outcomes_["a"].status.message().find("1 results for a batch of 2"), std::string::npos)
      << outcomes_["a"].status.message();
}

TEST_F(DispatchGroupTest, HungBatchIsRetriedElsewhereAndTheLateReplyIsIgnored) {
  Build(2, 1, 0, /*accel_timeout_us=*/50'000);
  Push("slow");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ex_.Advance(milliseconds(50));  // no reply: a failed attempt
  EXPECT_EQ(outcomes_.count("slow"), 0u);
  ex_.Advance(milliseconds(10));  // backoff (5..10 ms) over
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(fakes_[1]->batches[0][0]->input, "slow");
  EXPECT_EQ(fakes_[1]->batches[0][0]->attempts, 2);
  fakes_[1]->FinishOk();
  ex_.RunPending();
  ASSERT_TRUE(outcomes_["slow"].status.ok());
  uint64_t answered_by = outcomes_["slow"].batch_id;
  Push("next");
  ex_.RunPending();
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);  // slot 0 still busy: one batch per device
  fakes_[0]->FinishOk();                     // the late reply
  ex_.RunPending();
  EXPECT_EQ(outcomes_["slow"].batch_id, answered_by);  // answered once
}

TEST_F(DispatchGroupTest, HungBatchPastTheDeadlineAnswers504) {
  Build(1, 1, 0, /*accel_timeout_us=*/3'000'000);
  Push("slow", 1000, /*total_ms=*/100);
  ex_.RunPending();
  ex_.Advance(milliseconds(100));
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

TEST_F(DispatchGroupTest, FailedBatchIsRetriedWholeOnAnotherSlotAfterBackoff) {
  configure_ = [](DispatchGroup::Options& o) { o.retry.jitter = 0; };
  Build(2, 2, 0);
  Push("a");
  Push("b");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  FailBatch(0);
  EXPECT_TRUE(outcomes_.empty());
  EXPECT_EQ(group_->retries_pending(), 2u);
  ex_.Advance(milliseconds(9));
  EXPECT_TRUE(fakes_[1]->batches.empty());  // still backing off (10 ms)
  ex_.Advance(milliseconds(1));
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(fakes_[1]->batches[0].size(), 2u);
  EXPECT_EQ(group_->retries_pending(), 0u);
  fakes_[1]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["a"].output, "out:a");
  EXPECT_EQ(outcomes_["b"].output, "out:b");
  EXPECT_EQ(observer_.retried, 2u);
}

TEST_F(DispatchGroupTest, ADueRetryGoesBeforeQueuedWork) {
  configure_ = [](DispatchGroup::Options& o) { o.retry.jitter = 0; };
  Build(1, 1, 0);
  Push("first");
  ex_.RunPending();
  FailBatch(0);
  Push("second");  // the slot works while "first" backs off
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  Push("third");
  ex_.Advance(milliseconds(10));  // the retry is due; no slot free
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);
  EXPECT_EQ(fakes_[0]->batches[2][0]->input, "first");
}

TEST_F(DispatchGroupTest, ExhaustedRetriesGoToTheDeadLetterQueueWith502) {
  auto dlq = DeadLetterQueue::Create({});
  ASSERT_TRUE(dlq.ok());
  DeadLetterQueue* dead = dlq->get();
  configure_ = [dead](DispatchGroup::Options& o) {
    o.retry.jitter = 0;
    o.dead_letters = dead;
  };
  Build(1, 2, 0);
  Push("a");
  Push("b");
  ex_.RunPending();
  FailBatch(0, "HTTP 503");
  ex_.Advance(milliseconds(10));  // retry 1 after 10 ms
  FailBatch(0, "HTTP 503");
  ex_.Advance(milliseconds(20));  // retry 2 after 20 ms
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);
  EXPECT_TRUE(outcomes_.empty());
  FailBatch(0, "HTTP 503 again");
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_["a"].status.code(), ErrorCode::kBackendError);
  EXPECT_NE(outcomes_["a"].status.message().find("failed after 3 attempts: HTTP 503 again"),
            std::string::npos)
      << outcomes_["a"].status.message();
  EXPECT_EQ(observer_.dead, 2u);
  ASSERT_EQ(dead->size(), 2u);
  auto newest = dead->Newest(10);
  EXPECT_EQ(newest[0].attempts, 3);
  EXPECT_EQ(newest[0].last_error, "HTTP 503 again");
  EXPECT_EQ(newest[0].last_backend, "fake0");
  ex_.Advance(milliseconds(100));
  EXPECT_EQ(fakes_[0]->batches.size(), 3u);  // nothing more sent
}

TEST_F(DispatchGroupTest, ARetryNeverStartsPastTheDeadline) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.jitter = 0;
    o.retry.initial_backoff_us = 20'000;
  };
  Build(1, 2, 0);
  Push("tight", 1000, /*total_ms=*/15);
  Push("loose");
  ex_.RunPending();
  FailBatch(0);
  EXPECT_EQ(outcomes_["tight"].status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_NE(outcomes_["tight"].status.message().find("before a retry"), std::string::npos);
  EXPECT_EQ(outcomes_.count("loose"), 0u);
  ex_.Advance(milliseconds(20));
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  ASSERT_EQ(fakes_[0]->batches[1].size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "loose");
}

TEST_F(DispatchGroupTest, WaitingRetryExpiresWhenNoSlotFrees) {
  configure_ = [](DispatchGroup::Options& o) { o.retry.jitter = 0; };
  Build(2, 1, 0);
  Push("a", 1000, /*total_ms=*/200);
  Push("b");
  ex_.RunPending();
  FailBatch(0);  // "a" waits 10 ms for a retry
  Push("c");     // slot 0 takes "c" at once
  ex_.RunPending();
  ex_.Advance(milliseconds(200));  // slot 1 ("b") and slot 0 ("c") never finish
  EXPECT_EQ(outcomes_["a"].status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(group_->retries_pending(), 0u);
}

TEST_F(DispatchGroupTest, CancelledRequestIsDroppedBeforeTheAccelerator) {
  Build(1, 4, 10'000);
  auto gone = Push("gone");
  Push("stays");
  gone->Cancel();
  ex_.Advance(milliseconds(10));
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[0]->batches[0].size(), 1u);
  EXPECT_EQ(fakes_[0]->batches[0][0]->input, "stays");
  EXPECT_EQ(outcomes_["gone"].status.code(), ErrorCode::kCancelled);
}

TEST_F(DispatchGroupTest, OpenBreakerSendsTheLoadToHealthyEndpointsUntilAProbeSucceeds) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.max_retries = 0;
    o.breaker.consecutive_failures = 2;
    o.breaker.open_cooldown_ms = 1000;
  };
  Build(2, 1, 0);
  for (int i = 0; i < 2; ++i) {  // slot 0 fails twice, slot 1 answers
    Push("x" + std::to_string(i));
    Push("y" + std::to_string(i));
    ex_.RunPending();
    FailBatch(0);
    fakes_[1]->FinishOk();
    ex_.RunPending();
  }
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kOpen);
  EXPECT_EQ(group_->available_slots(), 1u);
  ASSERT_EQ(observer_.changes.size(), 1u);
  EXPECT_EQ(observer_.changes[0], std::make_pair(size_t{0}, BreakerState::kOpen));
  for (int i = 0; i < 3; ++i) {  // all on slot 1 now
    Push("z" + std::to_string(i));
    ex_.RunPending();
    fakes_[1]->FinishOk();
    ex_.RunPending();
  }
  EXPECT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_TRUE(outcomes_["z2"].status.ok());
  ex_.Advance(milliseconds(1000));  // cooldown over: half-open, one probe may go
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kHalfOpen);
  Push("p0");
  Push("p1");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);  // the probe
  ASSERT_EQ(fakes_[1]->batches.size(), 6u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kClosed);
  EXPECT_EQ(group_->available_slots(), 2u);
}

TEST_F(DispatchGroupTest, FailedProbeReopensTheBreakerWithALongerCooldown) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.max_retries = 0;
    o.breaker.consecutive_failures = 1;
    o.breaker.open_cooldown_ms = 100;
    o.breaker.max_cooldown_ms = 1'000;
  };
  Build(1, 1, 0);
  Push("a");
  ex_.RunPending();
  FailBatch(0);
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kOpen);
  Push("b", /*deadline_ms=*/1000);
  ex_.Advance(milliseconds(99));
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);  // open: pulls nothing
  ex_.Advance(milliseconds(1));
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);  // probe
  FailBatch(0);
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kOpen);
  Push("c", /*deadline_ms=*/1000);
  ex_.Advance(milliseconds(199));
  EXPECT_EQ(fakes_[0]->batches.size(), 2u);  // cooldown doubled to 200 ms
  ex_.Advance(milliseconds(1));
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_TRUE(outcomes_["c"].status.ok());
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kClosed);
}

TEST_F(DispatchGroupTest, SlotsOfOneEndpointShareItsBreaker) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.max_retries = 0;
    o.breaker.consecutive_failures = 1;
    o.slot_endpoints = {0, 0, 1};
    o.endpoint_names = {"http://a", "http://b"};
  };
  Build(3, 1, 0);
  EXPECT_EQ(group_->endpoint_count(), 2u);
  EXPECT_EQ(group_->endpoint_name(1), "http://b");
  Push("a");
  ex_.RunPending();
  FailBatch(0);
  EXPECT_EQ(group_->available_slots(), 1u);
  for (int i = 0; i < 2; ++i) {
    Push("n" + std::to_string(i));
    ex_.RunPending();
  }
  EXPECT_EQ(fakes_[1]->batches.size(), 0u);  // same endpoint as slot 0: open
  EXPECT_EQ(fakes_[2]->batches.size(), 1u);
}

TEST_F(DispatchGroupTest, AllEndpointsOpenRefusesWhatCannotWaitForTheProbe) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.max_retries = 0;
    o.breaker.consecutive_failures = 1;
    o.breaker.open_cooldown_ms = 2'000;
    o.breaker.max_cooldown_ms = 2'000;
  };
  Build(1, 1, 0);
  Push("a");
  ex_.RunPending();
  FailBatch(0);
  EXPECT_EQ(group_->available_slots(), 0u);
  EXPECT_EQ(group_->batch_room(), 0u);
  ASSERT_TRUE(group_->next_probe_at().has_value());
  EXPECT_EQ(*group_->next_probe_at(), ex_.Now() + milliseconds(2'000));
  Push("short", /*deadline_ms=*/500);   // cannot wait 2 s for the probe
  Push("long", /*deadline_ms=*/3'000);  // can
  ex_.Advance(milliseconds(2));         // one sweep
  EXPECT_EQ(outcomes_["short"].status.code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(outcomes_["short"].reason, "backends_unavailable");
  EXPECT_EQ(outcomes_["short"].retry_after_s, 2);
  EXPECT_EQ(outcomes_.count("long"), 0u);
  ex_.Advance(milliseconds(2'000));  // the probe: the queued request goes
  EXPECT_EQ(group_->endpoint_state(0), BreakerState::kHalfOpen);
  EXPECT_EQ(group_->probing_endpoints(), 1u);
  EXPECT_EQ(group_->batch_room(), 1u);
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(fakes_[0]->batches[1][0]->input, "long");
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_TRUE(outcomes_["long"].status.ok());
  EXPECT_EQ(group_->available_slots(), 1u);
  EXPECT_FALSE(group_->next_probe_at().has_value());
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
}

}  // namespace
}  // namespace sluice
