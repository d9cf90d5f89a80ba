// ModelScheduler: replacing a model's dispatch group while it serves (a
// reload that changes its backends or batching), on the fake executor.
#include "core/model_scheduler.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/fake_backend.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::FakeBackend;

// A FakeBackend that says when it is destroyed.
class TrackedBackend final : public Backend {
 public:
  TrackedBackend(FakeBackend* fake, bool* destroyed) : fake_(fake), destroyed_(destroyed) {}
  ~TrackedBackend() override { *destroyed_ = true; }
  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override {
    fake_->RunBatch(batch, std::move(done));
  }
  const std::string& name() const override { return fake_->name(); }

 private:
  FakeBackend* fake_;
  bool* destroyed_;
};

class ModelSchedulerTest : public ::testing::Test {
 protected:
  // A model of `slots` slots named prefix0.., every batch of up to 4.
  std::vector<std::unique_ptr<Backend>> Slots(const std::string& prefix, size_t slots) {
    std::vector<std::unique_ptr<Backend>> out;
    for (size_t i = 0; i < slots; ++i) {
      fakes_.push_back(std::make_unique<FakeBackend>(prefix + std::to_string(i)));
      destroyed_[prefix + std::to_string(i)] = false;
      out.push_back(std::make_unique<TrackedBackend>(fakes_.back().get(),
                                                     &destroyed_[prefix + std::to_string(i)]));
    }
    return out;
  }
  FakeBackend& Fake(const std::string& name) {
    for (auto& f : fakes_) {
      if (f->name() == name) return *f;
    }
    ADD_FAILURE() << "no backend " << name;
    return *fakes_.front();
  }

  DispatchGroup::Options Dispatch() {
    DispatchGroup::Options g;
    g.model = "m";
    g.max_batch_size = 4;
    g.max_batch_delay_us = 0;
    g.batching = BatchingMode::kStatic;
    g.expiry_check_interval_us = 1'000;
    g.retry.initial_backoff_us = 10'000;
    g.retry.max_backoff_us = 10'000;
    g.retry.jitter = 0;
    g.retry_seed = 7;
    g.executor = &ex_;
    g.router = &router_;
    return g;
  }

  void Build(size_t slots) {
    ModelScheduler::Options o;
    o.queue = {1000, QueueOrdering::kEarliestDeadlineFirst, {TierPolicy{"t", 0, 1'000'000}}};
    o.dispatch = Dispatch();
    o.admission = AdmissionController::Options{};
    o.admission->model = "m";
    o.admission->tiers = {AdmissionTier{"t", 0, kNoQueueDepthLimit, 0}};
    auto s = ModelScheduler::Create(std::move(o), Slots("a", slots));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    scheduler_ = std::move(s).value();
    scheduler_->Start();
    ex_.RunPending();
  }

  std::unique_ptr<DispatchGroup> NewGroup(const std::string& prefix, size_t slots) {
    auto g = scheduler_->NewGroup(Dispatch(), Slots(prefix, slots));
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? std::move(g).value() : nullptr;
  }

  RequestPtr Push(const std::string& input, int total_ms = 4000) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = input;
    r->arrival = ex_.Now();
    r->dispatch_deadline = r->arrival + milliseconds(1000);
    r->total_deadline = r->arrival + milliseconds(total_ms);
    r->set_on_complete([this, input](InferenceOutcome&& o) { outcomes_[input] = std::move(o); });
    EXPECT_TRUE(scheduler_->queue()->Push(r).ok());
    ex_.RunPending();
    return r;
  }

  testing::FakeExecutor ex_;
  LocalResultRouter router_;
  std::vector<std::unique_ptr<FakeBackend>> fakes_;
  std::map<std::string, bool> destroyed_;
  std::unique_ptr<ModelScheduler> scheduler_;
  std::map<std::string, InferenceOutcome> outcomes_;
};

// The batch in flight finishes on the old backend and is answered; what
// arrives afterwards runs on the new ones; the old group, and its backends,
// go once its last batch ended.
TEST_F(ModelSchedulerTest, ReplacedGroupFinishesItsBatchWhileTheNewOneServes) {
  Build(1);
  Push("x");
  ASSERT_EQ(Fake("a0").batches.size(), 1u);  // in flight on the old backend
  scheduler_->Replace(NewGroup("b", 2));
  ex_.RunPending();
  EXPECT_EQ(scheduler_->group()->endpoint_name(0), "b0");
  EXPECT_EQ(scheduler_->busy_slots(), 1u);  // the old group's batch counts
  Push("y");
  Push("z");
  EXPECT_EQ(Fake("a0").batches.size(), 1u);  // nothing more for the old one
  ASSERT_EQ(Fake("b0").batches.size(), 1u);
  ASSERT_EQ(Fake("b1").batches.size(), 1u);
  EXPECT_FALSE(destroyed_["a0"]);
  Fake("a0").FinishOk();
  Fake("b0").FinishOk();
  Fake("b1").FinishOk();
  ex_.RunPending();
  ASSERT_EQ(outcomes_.size(), 3u);
  for (const auto& [input, o] : outcomes_) {
    EXPECT_TRUE(o.status.ok()) << input << ": " << o.status.ToString();
    EXPECT_EQ(o.output, "out:" + input);
  }
  EXPECT_TRUE(destroyed_["a0"]);  // drained and held by nobody: gone
  EXPECT_FALSE(destroyed_["b0"]);
  EXPECT_EQ(scheduler_->busy_slots(), 0u);
  // Admission counts the new group's slots.
  EXPECT_EQ(scheduler_->admission()->Snapshot().total_slots, 2u);
  EXPECT_EQ(scheduler_->admission()->Snapshot().healthy_slots, 2u);
}

// A reader of group() that still held the old group when its last batch
// ended does not keep it (and its connections) for long: the scheduler's
// once-a-second tick destroys it.
TEST_F(ModelSchedulerTest, ARetiredGroupAReaderHeldGoesWithinASecond) {
  Build(1);
  Push("x");
  std::shared_ptr<DispatchGroup> held = scheduler_->group();
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  Fake("a0").FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].output, "out:x");
  EXPECT_FALSE(destroyed_["a0"]) << "held";
  held.reset();
  ex_.Advance(milliseconds(1'000));
  EXPECT_TRUE(destroyed_["a0"]);
}

// A batch handed to a group that a second reload retired meanwhile (the
// hand-over looked the group up just before) goes on to the group in force.
TEST_F(ModelSchedulerTest, ABatchSubmittedToARetiredGroupGoesToItsSuccessor) {
  Build(1);
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  std::shared_ptr<DispatchGroup> b = scheduler_->group();
  scheduler_->Replace(NewGroup("c", 1));
  ex_.RunPending();
  auto r = std::make_shared<InferenceRequest>();
  r->input = "x";
  r->arrival = ex_.Now();
  r->dispatch_deadline = r->total_deadline = r->arrival + milliseconds(4000);
  r->set_on_complete([this](InferenceOutcome&& o) { outcomes_["x"] = std::move(o); });
  b->Submit({r});
  b.reset();
  ex_.RunPending();
  EXPECT_TRUE(Fake("b0").batches.empty());
  ASSERT_EQ(Fake("c0").batches.size(), 1u);
  Fake("c0").FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].output, "out:x");
}

// A batch of the retired group that fails is retried on the new group's
// backends, and its clients get their answers from there.
TEST_F(ModelSchedulerTest, RetiredGroupsFailedBatchIsRetriedOnTheNewGroup) {
  Build(1);
  Push("x");
  ASSERT_EQ(Fake("a0").batches.size(), 1u);
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  Push("y");  // the new group's first batch
  ASSERT_EQ(Fake("b0").batches.size(), 1u);
  BatchResult failed;
  failed.status = BackendError("HTTP 500");
  Fake("a0").Finish(std::move(failed));
  ex_.RunPending();
  EXPECT_TRUE(destroyed_["a0"]);  // its failed batch went on: nothing left there
  Fake("b0").FinishOk();
  ex_.RunPending();
  ASSERT_EQ(Fake("b0").batches.size(), 2u);  // then the retry, when b0 freed
  EXPECT_EQ(Fake("b0").batches[1].size(), 1u);
  EXPECT_EQ(Fake("b0").batches[1][0]->input, "x");
  EXPECT_EQ(Fake("b0").batches[1][0]->attempts, 2);
  Fake("b0").FinishOk();
  ex_.RunPending();
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_["x"].output, "out:x");
  EXPECT_EQ(outcomes_["y"].output, "out:y");
  EXPECT_EQ(Fake("a0").batches.size(), 1u);
}

// A retry waiting for its backoff when the group is replaced runs on the
// new group.
TEST_F(ModelSchedulerTest, PendingRetryMovesToTheNewGroup) {
  Build(1);
  Push("x");
  BatchResult failed;
  failed.status = BackendError("HTTP 500");
  Fake("a0").Finish(std::move(failed));
  ex_.RunPending();
  EXPECT_EQ(scheduler_->group()->retries_pending(), 1u);  // backing off
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  EXPECT_EQ(scheduler_->group()->retries_pending(), 0u);
  ASSERT_EQ(Fake("b0").batches.size(), 1u);
  Fake("b0").FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].output, "out:x");
  EXPECT_EQ(Fake("a0").batches.size(), 1u);
}

// A client's deadline still holds while its batch runs on a retired group.
TEST_F(ModelSchedulerTest, DeadlineOfARequestInARetiredGroupsBatchIsKept) {
  Build(1);
  Push("x", /*total_ms=*/50);
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  ex_.Advance(milliseconds(60));
  ASSERT_EQ(outcomes_.count("x"), 1u);
  EXPECT_EQ(outcomes_["x"].status.code(), ErrorCode::kDeadlineExceeded);
  Fake("a0").FinishOk();  // the late reply is ignored
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(destroyed_["a0"]);
}

// A reload that is refused destroys the group it prepared: the running
// group, idle and waiting for the queue's wake-up, keeps it.
TEST_F(ModelSchedulerTest, AGroupPreparedAndDroppedLeavesTheRunningOneServing) {
  Build(1);
  NewGroup("b", 1).reset();
  Push("x");
  ASSERT_EQ(Fake("a0").batches.size(), 1u);
  Fake("a0").FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].output, "out:x");
}

// A retry is bound by its total deadline, not its dispatch deadline (long
// past when a batch fails late): so is one handed to the new group.
TEST_F(ModelSchedulerTest, ARetryHandedOverAfterItsDispatchDeadlineStillRuns) {
  Build(1);
  Push("x");                         // dispatch deadline 1 s, total 4 s
  Push("y");                         // waits behind it
  ex_.Advance(milliseconds(1'500));  // both dispatch deadlines passed
  ASSERT_EQ(outcomes_.count("y"), 1u);
  EXPECT_EQ(outcomes_["y"].status.code(), ErrorCode::kDeadlineExceeded);  // never sent
  BatchResult failed;
  failed.status = BackendError("HTTP 500");
  Fake("a0").Finish(std::move(failed));  // x waits for its retry
  ex_.RunPending();
  scheduler_->Replace(NewGroup("b", 1));
  ex_.RunPending();
  ASSERT_EQ(Fake("b0").batches.size(), 1u);
  Fake("b0").FinishOk();
  ex_.RunPending();
  EXPECT_EQ(outcomes_["x"].output, "out:x");
}

// A device an operator took out of service stays out when the model's
// group is replaced (the new group's slot of the endpoint of that name);
// the new group's other devices serve, admission counts what is in
// service, and the device serves again once switched back on.
TEST_F(ModelSchedulerTest, ADeviceTakenOutOfServiceStaysOutAcrossAReplacement) {
  Build(2);
  ASSERT_TRUE(scheduler_->SetDeviceEnabled(1, false).ok());
  ex_.RunPending();
  DispatchGroup::Options d = Dispatch();
  d.endpoint_names = {"a0", "a1", "a2"};  // the same two devices and a third
  auto next = scheduler_->NewGroup(d, Slots("c", 3));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  scheduler_->Replace(std::move(next).value());
  ex_.RunPending();
  const std::shared_ptr<DispatchGroup> group = scheduler_->group();
  EXPECT_TRUE(group->slot_enabled(0));
  EXPECT_FALSE(group->slot_enabled(1));
  EXPECT_TRUE(group->slot_enabled(2));
  EXPECT_EQ(group->enabled_slots(), 2u);
  EXPECT_EQ(scheduler_->admission()->Snapshot().healthy_slots, 2u);
  Push("x");
  Push("y");
  Push("z");  // both slots in service are busy: it waits
  EXPECT_EQ(Fake("c0").batches.size(), 1u);
  EXPECT_EQ(Fake("c1").batches.size(), 0u);
  EXPECT_EQ(Fake("c2").batches.size(), 1u);
  ASSERT_TRUE(scheduler_->SetDeviceEnabled(1, true).ok());
  ex_.RunPending();
  ASSERT_EQ(Fake("c1").batches.size(), 1u);
  Fake("c0").FinishOk();
  Fake("c1").FinishOk();
  Fake("c2").FinishOk();
  ex_.RunPending();
  ASSERT_EQ(outcomes_.size(), 3u);
  for (const auto& [input, o] : outcomes_) EXPECT_EQ(o.output, "out:" + input);
  EXPECT_EQ(scheduler_->admission()->Snapshot().healthy_slots, 3u);
}

TEST_F(ModelSchedulerTest, NewGroupKeepsTheModelsMaxBatchSize) {
  Build(1);
  DispatchGroup::Options g = Dispatch();
  g.max_batch_size = 8;
  auto group = scheduler_->NewGroup(g, Slots("b", 1));
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().message(),
            "model 'm': max_batch_size 4 cannot change while the model runs (8 asked)");
}

}  // namespace
}  // namespace sluice
