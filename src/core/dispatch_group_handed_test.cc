// DispatchGroup without a queue: batches formed elsewhere (a worker's claim
// from Redis) handed over whole with Submit().
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "core/dispatch_group.h"
#include "core/dispatch_group_test_fixture.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

std::vector<std::string> Inputs(const std::vector<RequestPtr>& batch) {
  std::vector<std::string> out;
  for (const RequestPtr& r : batch) out.push_back(r->input);
  return out;
}

// A worker's claim asks AsyncFillSize() for how far asynchronous work may
// fill its next batch: so that it ends apart from the busy slots' batches.
TEST_F(DispatchGroupTest, AsyncFillSizeStaggersAgainstTheBusySlots) {
  with_queue_ = false;
  Build(2, 32, 0);  // the default cost model: 34 ms + 0.5 ms per item
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 32u);  // nothing busy: a full batch
  std::vector<RequestPtr> full;
  for (int i = 0; i < 32; ++i) {
    full.push_back(Make("a" + std::to_string(i)));
    full.back()->async = true;  // no synchronous requests flowing: no limit
  }
  group_->Submit(std::move(full));
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  // Slot 0 ends at 50 ms: 8 (38 ms) ends the farthest from it.
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 8u);
  // 10 ms on, slot 0 ends in 40 ms: a full batch (50 ms) is farthest.
  ex_.Advance(milliseconds(10));
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 32u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 32u);  // free again
}

// A worker's group learns that synchronous requests flow from the batches
// handed to it: for a second after one ran, a claim's async fill stops at
// async_fill_max_batch_size (three quarters of max_batch_size by default).
TEST_F(DispatchGroupTest, AsyncFillSizeStopsAtTheLimitWhileSynchronousRequestsFlow) {
  with_queue_ = false;
  Build(1, 32, 0);
  std::vector<RequestPtr> batch;
  for (int i = 0; i < 8; ++i) {
    batch.push_back(Make("a" + std::to_string(i)));
    batch.back()->async = true;
  }
  group_->Submit(std::move(batch));  // async only
  ex_.RunPending();
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 32u);
  group_->Submit({Make("sync")});
  ex_.RunPending();
  fakes_[0]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 24u);
  ex_.Advance(milliseconds(999));
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 24u);
  ex_.Advance(milliseconds(1));
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 32u);
}

// With every slot busy, the next batch is for the slot expected to free
// first, from then on: NextFreeSlotAt() says when, and AsyncFillSize()
// staggers against the others.
TEST_F(DispatchGroupTest, WithEverySlotBusyTheNextBatchIsSizedForTheFirstToFree) {
  with_queue_ = false;
  Build(2, 32, 0);  // 34 ms + 0.5 ms per item
  const TimePoint t0 = ex_.Now();
  EXPECT_EQ(group_->NextFreeSlotAt(t0), t0);
  std::vector<RequestPtr> full, small;
  for (int i = 0; i < 32; ++i) full.push_back(Make("a" + std::to_string(i)));
  for (int i = 0; i < 8; ++i) small.push_back(Make("b" + std::to_string(i)));
  group_->Submit(std::move(full));  // slot 0: ends at 50 ms
  ex_.RunPending();
  EXPECT_EQ(group_->NextFreeSlotAt(t0), t0);  // slot 1 is free
  group_->Submit(std::move(small));           // slot 1: ends at 38 ms
  ex_.RunPending();
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(group_->NextFreeSlotAt(t0), t0 + milliseconds(38));
  // Starting at 38 ms, beside slot 0's end at 50 ms and its next full
  // batch's at 100 ms: a full batch would end at 88 ms, 12 ms from 100; a
  // batch of 8 at 76 ms, 24 ms from it and 26 ms from 50: 8.
  EXPECT_EQ(group_->AsyncFillSize(t0), 8u);
  ex_.Advance(milliseconds(40));  // past slot 1's expected end, still busy
  EXPECT_EQ(group_->NextFreeSlotAt(ex_.Now()), t0 + milliseconds(38));  // overdue
  // From now on (40 ms): 8 ends at 78 ms, 28 ms after slot 0's end and 22
  // before its next.
  EXPECT_EQ(group_->AsyncFillSize(ex_.Now()), 8u);
  while (fakes_[0]->busy()) fakes_[0]->FinishOk();
  while (fakes_[1]->busy()) fakes_[1]->FinishOk();
  ex_.RunPending();
}

TEST_F(DispatchGroupTest, AHandedBatchRunsWholeAtOnceWithoutBatchingAgain) {
  with_queue_ = false;
  Build(2, 4, /*delay_us=*/50'000);  // static: a queue would wait for 4
  group_->Submit({Make("a"), Make("b"), Make("c")});
  ex_.RunPending();  // no time passes
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[0]), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(group_->handed_waiting(), 0u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(outcomes_.size(), 3u);
  EXPECT_EQ(outcomes_["b"].output, "out:b");
  EXPECT_EQ(outcomes_["b"].batch_size, 3u);
}

TEST_F(DispatchGroupTest, HandedBatchesWaitForASlotInOrderAndAreNeverMerged) {
  with_queue_ = false;
  Build(1, 4, 0);
  group_->Submit({Make("a1"), Make("a2")});
  group_->Submit({Make("b1")});
  group_->Submit({Make("c1"), Make("c2")});
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  EXPECT_EQ(group_->handed_waiting(), 3u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[1]), (std::vector<std::string>{"b1"}));
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 3u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[2]), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(group_->handed_waiting(), 0u);
}

TEST_F(DispatchGroupTest, AHandedBatchOverTheMaximumRunsAsSeveral) {
  with_queue_ = false;
  Build(2, 2, 0);
  group_->Submit({Make("r0"), Make("r1"), Make("r2"), Make("r3"), Make("r4")});
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 1u);
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[0]), (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(Inputs(fakes_[1]->batches[0]), (std::vector<std::string>{"r2", "r3"}));
  EXPECT_EQ(group_->handed_waiting(), 1u);
  fakes_[1]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[1]->batches.size(), 2u);
  EXPECT_EQ(Inputs(fakes_[1]->batches[1]), (std::vector<std::string>{"r4"}));
}

TEST_F(DispatchGroupTest, AWaitingHandedRequestPastItsDeadlineIsAnsweredAndNeverSent) {
  with_queue_ = false;
  Build(1, 4, 0);
  group_->Submit({Make("busy")});
  ex_.RunPending();
  RequestPtr gone = Make("gone");
  group_->Submit({Make("short", /*deadline_ms=*/5), Make("long"), gone});
  gone->Cancel();
  ex_.Advance(milliseconds(6));  // the sweep runs while the slot is busy
  EXPECT_EQ(outcomes_["short"].status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(outcomes_["short"].status.message(),
            "deadline passed after 5 ms in queue; request not sent to the accelerator");
  EXPECT_EQ(group_->handed_waiting(), 2u);
  fakes_[0]->FinishOk();
  ex_.RunPending();
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[1]), (std::vector<std::string>{"long"}));
  EXPECT_EQ(outcomes_["gone"].status.code(), ErrorCode::kCancelled);
}

TEST_F(DispatchGroupTest, AHandedBatchIsRefusedWhileNoSlotCanTakeWork) {
  with_queue_ = false;
  Build(1, 4, 0);
  ASSERT_TRUE(group_->SetSlotEnabled(0, false));
  ex_.RunPending();
  group_->Submit({Make("a"), Make("b")});
  ex_.RunPending();  // refused at once, not left to expire
  EXPECT_TRUE(fakes_[0]->batches.empty());
  EXPECT_EQ(outcomes_["a"].status.code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(outcomes_["b"].reason, "backends_unavailable");
  EXPECT_EQ(group_->handed_waiting(), 0u);
}

TEST_F(DispatchGroupTest, AHandedBatchWaitsForTheProbeOrIsRefusedWhenItCannotMakeIt) {
  with_queue_ = false;
  configure_ = [](DispatchGroup::Options& o) {
    o.breaker.consecutive_failures = 1;
    o.retry.max_retries = 0;
  };
  Build(1, 4, 0);
  group_->Submit({Make("first")});
  ex_.RunPending();
  group_->Submit({Make("waiting", /*deadline_ms=*/5'000, /*total_ms=*/10'000)});
  ex_.RunPending();
  EXPECT_EQ(group_->handed_waiting(), 1u);
  FailBatch(0);  // the breaker opens: nothing can take work until its probe
  EXPECT_EQ(outcomes_["first"].status.code(), ErrorCode::kBackendError);
  // Its deadline is after the probe (1 s): it stays for the probe batch.
  EXPECT_EQ(outcomes_.count("waiting"), 0u);
  ex_.Advance(milliseconds(1'000));
  ASSERT_EQ(fakes_[0]->batches.size(), 2u);
  EXPECT_EQ(Inputs(fakes_[0]->batches[1]), (std::vector<std::string>{"waiting"}));
  FailBatch(0);  // the probe fails: open again
  group_->Submit({Make("doomed", /*deadline_ms=*/500)});
  ex_.RunPending();  // cannot run before the next probe: refused now
  EXPECT_EQ(outcomes_["doomed"].status.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(outcomes_["doomed"].retry_after_s, 1);
}

TEST_F(DispatchGroupTest, AFailedHandedBatchIsRetriedWholeOnAnotherSlot) {
  with_queue_ = false;
  configure_ = [](DispatchGroup::Options& o) { o.retry.jitter = 0; };
  Build(2, 4, 0);
  group_->Submit({Make("a"), Make("b")});
  ex_.RunPending();
  FailBatch(0);
  EXPECT_EQ(group_->retries_pending(), 2u);
  ex_.Advance(milliseconds(10));
  ASSERT_EQ(fakes_[1]->batches.size(), 1u);
  EXPECT_EQ(Inputs(fakes_[1]->batches[0]), (std::vector<std::string>{"a", "b"}));
  fakes_[1]->FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["a"].output, "out:a");
  EXPECT_EQ(outcomes_["a"].status.ok(), true);
}

TEST_F(DispatchGroupTest, HandedBatchesTeachTheAdaptiveTarget) {
  with_queue_ = false;
  configure_ = [](DispatchGroup::Options& o) { o.batching = BatchingMode::kAdaptive; };
  Build(1, 32, 20'000);  // prior: 34 ms + 0.5 ms/item: 640/s at most
  EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 1u);
  int n = 0;
  for (int round = 0; round < 120; ++round) {  // 1,280 requests/s, handed 32 at a time
    std::vector<RequestPtr> batch;
    for (int i = 0; i < 32; ++i) batch.push_back(Make("r" + std::to_string(n++)));
    group_->Submit(std::move(batch));
    ex_.Advance(milliseconds(25));
    fakes_[0]->FinishOk();
    ex_.RunPending();
  }
  // What a worker's claim loop asks Redis for: full batches at this load.
  EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 32u);
  ex_.Advance(std::chrono::seconds(5));
  EXPECT_EQ(group_->TargetBatchSize(ex_.Now()), 1u);
}

// The collector's rule that a worker's claim loop also asks for: the
// target, or a full batch when one is due within the delay left anyway.
TEST_F(DispatchGroupTest, TheBatchToWaitForIsAFullOneOnlyWhenItIsDueWithinTheDelay) {
  with_queue_ = false;
  configure_ = [](DispatchGroup::Options& o) { o.batching = BatchingMode::kAdaptive; };
  Build(1, 32, 20'000);  // prior: 34 ms + 0.5 ms/item
  EXPECT_EQ(group_->TimeToQueue(ex_.Now(), 1), SteadyClock::duration::max());  // no rate yet
  EXPECT_EQ(group_->TimeToQueue(ex_.Now(), 0), SteadyClock::duration::zero());
  int n = 0;
  for (int round = 0; round < 50; ++round) {  // 2 s at 200 requests/s
    std::vector<RequestPtr> batch;
    for (int i = 0; i < 8; ++i) batch.push_back(Make("r" + std::to_string(n++)));
    group_->Submit(std::move(batch));
    ex_.Advance(milliseconds(40));
    fakes_[0]->FinishOk();
    ex_.RunPending();
  }
  const TimePoint now = ex_.Now();
  // lambda = 200 * 1.25 = 250/s: n* = ceil(250 * 0.034 / (1 - 250 * 0.0005)) = 10.
  EXPECT_EQ(group_->TargetBatchSize(now), 10u);
  // 2 more requests at ~200/s take ~10 ms.
  EXPECT_NEAR(ToMillis(group_->TimeToQueue(now, 2)), 10.0, 1.0);
  EXPECT_EQ(group_->BatchToWaitFor(now, 30, milliseconds(20)), 32u);  // full in ~10 ms
  EXPECT_EQ(group_->BatchToWaitFor(now, 30, milliseconds(5)), 10u);   // not in time
  EXPECT_EQ(group_->BatchToWaitFor(now, 5, milliseconds(20)), 10u);   // 27 more: ~135 ms
  EXPECT_EQ(group_->BatchToWaitFor(now, 30, -milliseconds(1)), 10u);  // the delay is over
}

TEST_F(DispatchGroupTest, AbortAnswersHandedBatchesStillWaiting) {
  with_queue_ = false;
  Build(1, 4, 0);
  group_->Submit({Make("running")});
  group_->Submit({Make("waiting")});
  ex_.RunPending();
  group_->AbortInFlight(Unavailable("shutting down"));
  ex_.RunPending();
  EXPECT_EQ(outcomes_["running"].status.message(), "shutting down");
  EXPECT_EQ(outcomes_["waiting"].status.message(), "shutting down");
  EXPECT_EQ(group_->handed_waiting(), 0u);
}

// Seeded scenarios: handed batches of random sizes and deadlines, slots
// finishing or failing at random, breakers opening, a slot switched off and
// on. Whatever happens: every request is answered, a request is never first
// sent after its dispatch deadline, nothing waits once the group is idle,
// a request whose deadlines outlast the scenario is never left to expire
// (it runs, or is refused or dead-lettered: a batch stranded in the group
// would end as a 504), and a first attempt runs requests of ONE handed
// batch, in their order (batches are never merged or reordered).
TEST_F(DispatchGroupTest, HandedBatchesKeepTheirRulesOverManySeededScenarios) {
  with_queue_ = false;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    configure_ = [](DispatchGroup::Options& o) {
      o.breaker.consecutive_failures = 2;
      o.breaker.open_cooldown_ms = 50;
      o.breaker.max_cooldown_ms = 50;
      o.retry.max_retries = 1;
    };
    fakes_.clear();
    outcomes_.clear();
    group_.reset();
    Build(3, 4, 0);
    std::map<std::string, int> answers;  // input -> times answered
    std::map<std::string, ErrorCode> codes;
    std::set<std::string> patient;  // deadlines beyond the scenario and its drain
    std::map<std::string, size_t> chunk_of;
    std::vector<RequestPtr> all;
    size_t chunk = 0;
    // A first attempt leaves before its dispatch deadline (checked as each
    // batch appears: a retry later overwrites dispatched_at).
    std::vector<size_t> checked(fakes_.size(), 0);
    size_t late = 0, merged = 0, reordered = 0;
    auto check_new_batches = [&] {
      for (size_t f = 0; f < fakes_.size(); ++f) {
        for (; checked[f] < fakes_[f]->batches.size(); ++checked[f]) {
          const std::vector<RequestPtr>& batch = fakes_[f]->batches[checked[f]];
          if (batch[0]->attempts != 1) continue;  // a retry: its own rules
          for (size_t i = 0; i < batch.size(); ++i) {
            const RequestPtr& r = batch[i];
            late += r->dispatched_at >= r->dispatch_deadline;
            if (i == 0) continue;
            merged += chunk_of[r->input] != chunk_of[batch[0]->input];
            reordered += std::stoi(batch[i - 1]->input.substr(1)) >= std::stoi(r->input.substr(1));
          }
        }
      }
    };
    for (int step = 0; step < 60; ++step) {
      switch (rng() % 6) {
        case 0:
        case 1: {  // a claim arrives
          const size_t n = 1 + rng() % 6;
          std::vector<RequestPtr> batch;
          for (size_t i = 0; i < n; ++i) {
            const std::string id = "s" + std::to_string(all.size());
            const bool long_lived = rng() % 3 == 0;
            RequestPtr r = long_lived ? Make(id, 60'000, 120'000)
                                      : Make(id, 5 + static_cast<int>(rng() % 200), 400);
            if (long_lived) patient.insert(id);
            r->set_on_complete([&answers, &codes, id](InferenceOutcome&& o) {
              ++answers[id];
              codes[id] = o.status.code();
            });
            chunk_of[id] = chunk + i / 4;  // how a batch over 4 is split
            all.push_back(r);
            batch.push_back(std::move(r));
          }
          chunk += (n + 3) / 4;
          group_->Submit(std::move(batch));
          break;
        }
        case 2:
        case 3: {  // a busy slot answers, or fails as a whole
          const size_t slot = rng() % fakes_.size();
          if (!fakes_[slot]->busy()) break;
          if (rng() % 3 == 0) {
            FailBatch(slot);
          } else {
            fakes_[slot]->FinishOk();
          }
          break;
        }
        case 4:
          group_->SetSlotEnabled(rng() % fakes_.size(), rng() % 2 == 0);
          break;
        default:
          ex_.Advance(milliseconds(1 + rng() % 30));
      }
      ex_.RunPending();
      check_new_batches();
    }
    for (size_t slot = 0; slot < fakes_.size(); ++slot) group_->SetSlotEnabled(slot, true);
    for (int round = 0; round < 100; ++round) {  // drain: answer whatever runs
      ex_.Advance(milliseconds(20));
      for (FakeBackend* f : fakes_) {
        while (f->busy()) f->FinishOk();
      }
      ex_.RunPending();
      check_new_batches();
    }
    EXPECT_EQ(late, 0u);
    EXPECT_EQ(merged, 0u);
    EXPECT_EQ(reordered, 0u);
    EXPECT_EQ(group_->handed_waiting(), 0u);
    EXPECT_EQ(group_->busy_slots(), 0u);
    EXPECT_EQ(group_->retries_pending(), 0u);
    for (const RequestPtr& r : all) {
      EXPECT_EQ(answers[r->input], 1) << r->input;
      if (patient.count(r->input) > 0) {
        EXPECT_NE(codes[r->input], ErrorCode::kDeadlineExceeded) << r->input;
      }
    }
  }
}

}  // namespace
}  // namespace sluice
