#include "core/dispatch_group.h"

#include <gtest/gtest.h>

#include "core/dispatch_group_test_fixture.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::FakeBackend;
using testing::FakeExecutor;

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

TEST_F(DispatchGroupTest, ARetryAvoidsEveryEndpointTheBatchFailedOn) {
  configure_ = [](DispatchGroup::Options& o) {
    o.retry.jitter = 0;
    o.retry.initial_backoff_us = 10'000;
    o.retry.max_backoff_us = 10'000;
  };
  Build(3, 1, 0);
  Push("a");
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  FailBatch(0);  // attempt 1 on slot 0; free: 1, 2, 0
  Push("x");
  Push("y");
  ex_.RunPending();  // x on slot 1, y on slot 2; free: 0
  fakes_[1]->FinishOk();
  ex_.RunPending();  // free: 0, 1
  ex_.Advance(milliseconds(10));
  ASSERT_EQ(fakes_[1]->batches.size(), 2u);  // attempt 2 avoids slot 0
  EXPECT_EQ(fakes_[1]->batches[1][0]->input, "a");
  FailBatch(1);  // free: 0, 1
  fakes_[2]->FinishOk();
  ex_.RunPending();  // free: 0, 1, 2
  ex_.Advance(milliseconds(10));
  // Attempt 3 goes to the one endpoint it has not failed on, though slot 0
  // is first in line.
  EXPECT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[2]->batches.size(), 2u);
  EXPECT_EQ(fakes_[2]->batches[1][0]->input, "a");
  fakes_[2]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["a"].output, "out:a");
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
  // The client reads what happened to its request; the backend's name and
  // words go to the dead-letter entry and the outcome's internal detail.
  EXPECT_EQ(outcomes_["a"].status.message(),
            "model 'm' failed after 3 attempts (the backend reported an error)");
  EXPECT_EQ(outcomes_["a"].detail, "fake0: HTTP 503 again");
  EXPECT_EQ(observer_.dead, 2u);
  ASSERT_EQ(dead->size(), 2u);
  auto newest = dead->Newest(10);
  EXPECT_EQ(newest[0].attempts, 3);
  EXPECT_EQ(newest[0].last_error, "HTTP 503 again");
  EXPECT_EQ(newest[0].last_backend, "fake0");
  ex_.Advance(milliseconds(100));
  EXPECT_EQ(fakes_[0]->batches.size(), 3u);  // nothing more sent
}

TEST_F(DispatchGroupTest, A502NamesNoBackendWhileTheDeadLetterKeepsTheDetail) {
  auto dlq = DeadLetterQueue::Create({});
  ASSERT_TRUE(dlq.ok());
  DeadLetterQueue* dead = dlq->get();
  configure_ = [dead](DispatchGroup::Options& o) {
    o.retry.max_retries = 0;
    o.dead_letters = dead;
  };
  Build(1, 1, 0);
  Push("a");
  ex_.RunPending();
  // What an HTTP backend reports: its name (protocol, URL, slot), then the
  // inference API's own words, here cut in the middle of a character.
  const std::string backend_text =
      "fake0: http://10.1.2.3:8000/v1/batch answered HTTP 500: \xE6\xA8\xA1\xE5\x9E";
  FailBatch(0, backend_text);
  const InferenceOutcome& o = outcomes_["a"];
  EXPECT_EQ(o.status.code(), ErrorCode::kBackendError);
  EXPECT_EQ(o.status.message(), "model 'm' failed after 1 attempt (the backend reported an error)");
  for (const char* internal : {"fake0", "10.1.2.3", "http", "HTTP 500", "\xE6"}) {
    EXPECT_EQ(o.status.message().find(internal), std::string::npos) << internal;
  }
  // The detail keeps the backend's name and text, made valid UTF-8.
  EXPECT_EQ(o.detail,
            "fake0: http://10.1.2.3:8000/v1/batch answered HTTP 500: \xE6\xA8\xA1\xEF\xBF\xBD");
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ(dead->Newest(1)[0].last_error,
            "fake0: http://10.1.2.3:8000/v1/batch answered HTTP 500: \xE6\xA8\xA1\xEF\xBF\xBD");
  EXPECT_EQ(observer_.failed_batches, 1u);
  EXPECT_EQ(observer_.last_failure.message(), backend_text);
}

TEST_F(DispatchGroupTest, ATimedOutBatchTellsTheClientHowLongItWaitedNotWhere) {
  configure_ = [](DispatchGroup::Options& o) { o.retry.max_retries = 0; };
  Build(1, 1, 0, /*accel_timeout_us=*/50'000);
  Push("slow");
  ex_.RunPending();
  ex_.Advance(milliseconds(50));
  const InferenceOutcome& o = outcomes_["slow"];
  EXPECT_EQ(o.status.message(), "model 'm' failed after 1 attempt (no reply within 50 ms)");
  EXPECT_EQ(o.detail, "no reply from fake0 within 50 ms");
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
  EXPECT_EQ(outcomes_["tight"].status.message(),
            "deadline would pass before a retry (1 attempt; last: the backend reported an error)");
  EXPECT_EQ(outcomes_["tight"].detail, "fake0: HTTP 500");
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

}  // namespace
}  // namespace sluice
