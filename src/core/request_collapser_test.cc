#include "core/request_collapser.h"

#include <gtest/gtest.h>

#include <map>

#include "common/ids.h"
#include "core/inference_service.h"
#include "core/memory_queue.h"
#include "core/memory_request_log.h"
#include "core/memory_result_cache.h"
#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

constexpr TierIndex kFree = 0;
constexpr TierIndex kEnterprise = 1;

// A model whose answers may always be shared, with a collapser (and a result
// cache) in front of its queue, driven through InferenceService as the front
// door drives it. The test plays the dispatcher: it pops carriers and
// completes them.
class RequestCollapserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tiers_ = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000},
              TierPolicy{"enterprise", 2, 400'000, 2'000'000, 4'000'000}};
    queue_ =
        std::move(MemoryQueue::Create({4, QueueOrdering::kEarliestDeadlineFirst, tiers_})).value();
    log_ = std::move(MemoryRequestLog::Create({256})).value();
    MemoryResultCache::Options co;
    co.clock = &ex_.clock();
    cache_ = std::move(MemoryResultCache::Create(co)).value();
    collapser_ = std::move(RequestCollapser::Create({queue_.get(), &ex_})).value();
    InferenceService::Options o;
    o.tiers = tiers_;
    o.models = {{"m", "m-v1", 100, 16, queue_.get(), nullptr, cache_.get(), /*deterministic=*/true,
                 collapser_.get()}};
    o.log = log_.get();
    o.clock = &ex_.clock();
    service_ = std::move(InferenceService::Create(o)).value();
  }

  // Submits a request for `input`; its outcome lands in outcomes_[id], and
  // it is finished as the front door finishes it.
  RequestPtr Submit(const std::string& input, TierIndex tier = kFree,
                    int64_t client_timeout_us = 0) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = NewRequestId();  // the log finds local ids in their own slot
    r->principal.tier = tier;
    r->model = "m";
    r->input = input;
    r->set_on_complete([this, raw = r.get()](InferenceOutcome&& o) {
      service_->Finish(*raw, o, 1);
      outcomes_[raw->id] = std::move(o);
    });
    Status s = service_->Submit(r, client_timeout_us);
    EXPECT_TRUE(s.ok()) << s.message();
    return r;
  }
  // Pops the queue's head (the dispatcher's part) and returns it.
  RequestPtr PopHead() {
    std::vector<RequestPtr> batch, dropped;
    queue_->PopBatch(1, ex_.Now(), &batch, &dropped);
    EXPECT_TRUE(dropped.empty());
    if (batch.empty()) return nullptr;
    batch[0]->MarkDispatched();
    return batch[0];
  }
  // Answers `carrier` as its batch would, after `queued` in the queue.
  static void Answer(const RequestPtr& carrier, const std::string& output,
                     SteadyClock::duration queued = milliseconds(0)) {
    InferenceOutcome ok;
    ok.output = output;
    ok.tokens_used = 7;
    ok.model_version = "m-v1";
    ok.batch_id = 42;
    ok.queue_wait = queued;
    ok.accelerator_time = milliseconds(30);
    carrier->Complete(std::move(ok));
  }
  const InferenceOutcome* OutcomeOf(const RequestPtr& r) const {
    auto it = outcomes_.find(r->id);
    return it == outcomes_.end() ? nullptr : &it->second;
  }

  testing::FakeExecutor ex_;
  std::vector<TierPolicy> tiers_;
  std::unique_ptr<MemoryQueue> queue_;
  std::unique_ptr<MemoryRequestLog> log_;
  std::unique_ptr<MemoryResultCache> cache_;
  std::unique_ptr<RequestCollapser> collapser_;
  std::unique_ptr<InferenceService> service_;
  std::map<std::string, InferenceOutcome> outcomes_;
};

TEST_F(RequestCollapserTest, AHundredIdenticalRequestsTakeOneQueuePlaceAndAllGetTheAnswer) {
  std::vector<RequestPtr> reqs;
  for (int i = 0; i < 100; ++i) {
    reqs.push_back(Submit("same input"));
    ex_.Advance(milliseconds(1));
  }
  EXPECT_EQ(queue_->Depth(), 1u);
  EXPECT_EQ(collapser_->groups(), 1u);
  RequestPtr carrier = PopHead();
  ASSERT_NE(carrier, nullptr);
  // The carrier is the collapser's own request: its id is none of theirs.
  for (const RequestPtr& r : reqs) EXPECT_NE(carrier->id, r->id);
  EXPECT_EQ(carrier->charged_tokens, 0);
  EXPECT_TRUE(outcomes_.empty());

  Answer(carrier, "shared answer", milliseconds(100));
  ASSERT_EQ(outcomes_.size(), 100u);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const InferenceOutcome* o = OutcomeOf(reqs[i]);
    ASSERT_NE(o, nullptr);
    ASSERT_TRUE(o->status.ok());
    EXPECT_EQ(o->output, "shared answer");
    EXPECT_EQ(o->batch_id, 42u);
    // The first ran its own item; the others shared it.
    EXPECT_EQ(o->collapsed, i > 0) << i;
    // Queue wait from each one's own arrival (1 ms apart) to the dispatch.
    EXPECT_EQ(o->queue_wait, milliseconds(100 - static_cast<int64_t>(i))) << i;
    // Every one is in the request log under its own id.
    ASSERT_TRUE(log_->Lookup(reqs[i]->id).has_value());
    EXPECT_EQ(log_->Lookup(reqs[i]->id)->http_status, 200);
  }
  EXPECT_EQ(collapser_->collapsed(), 99u);
  EXPECT_EQ(collapser_->groups(), 0u);
  // Stored once, not once per request that shared it.
  EXPECT_EQ(cache_->stats().stores, 1u);
}

TEST_F(RequestCollapserTest, ALaterRequestJoinsWhileTheItemIsOnTheAccelerator) {
  RequestPtr first = Submit("x");
  RequestPtr carrier = PopHead();
  ASSERT_NE(carrier, nullptr);
  ex_.Advance(milliseconds(10));
  RequestPtr late = Submit("x");
  EXPECT_EQ(queue_->Depth(), 0u);  // joined the item in flight
  Answer(carrier, "y", milliseconds(5));
  ASSERT_NE(OutcomeOf(late), nullptr);
  EXPECT_EQ(OutcomeOf(late)->output, "y");
  EXPECT_EQ(OutcomeOf(late)->queue_wait, milliseconds(0));  // came after the dispatch
  EXPECT_EQ(OutcomeOf(late)->accelerator_time, milliseconds(25));
  EXPECT_EQ(OutcomeOf(first)->accelerator_time, milliseconds(30));
  // Once answered, the group is gone (the next one is a cache hit).
  EXPECT_EQ(collapser_->groups(), 0u);
  RequestPtr again = Submit("x");
  ASSERT_NE(OutcomeOf(again), nullptr);
  EXPECT_TRUE(OutcomeOf(again)->cached);
}

TEST_F(RequestCollapserTest, DifferentRequestsAreNotCollapsed) {
  Submit("a");
  Submit("b");
  EXPECT_EQ(queue_->Depth(), 2u);
  EXPECT_EQ(collapser_->groups(), 2u);
}

TEST_F(RequestCollapserTest, AMemberThatLeavesIsAnsweredAloneAndTheOthersStillWait) {
  RequestPtr a = Submit("x");
  RequestPtr b = Submit("x");
  RequestPtr c = Submit("x");
  service_->Withdraw(a);  // the one the carrier was made from
  ASSERT_NE(OutcomeOf(a), nullptr);
  EXPECT_EQ(OutcomeOf(a)->status.code(), ErrorCode::kCancelled);
  EXPECT_EQ(outcomes_.size(), 1u);
  RequestPtr carrier = PopHead();
  ASSERT_NE(carrier, nullptr);
  EXPECT_FALSE(carrier->cancelled());
  Answer(carrier, "y");
  EXPECT_EQ(OutcomeOf(b)->output, "y");
  EXPECT_EQ(OutcomeOf(c)->output, "y");
  EXPECT_EQ(OutcomeOf(a)->status.code(), ErrorCode::kCancelled);  // answered once only
}

TEST_F(RequestCollapserTest, WhenEveryMemberLeftTheCarrierIsDropped) {
  RequestPtr a = Submit("x");
  RequestPtr b = Submit("x");
  service_->Withdraw(b);
  service_->Withdraw(a);
  EXPECT_EQ(collapser_->groups(), 0u);
  std::vector<RequestPtr> batch, dropped;
  queue_->PopBatch(4, ex_.Now(), &batch, &dropped);
  EXPECT_TRUE(batch.empty());  // never reaches the accelerator
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_TRUE(dropped[0]->cancelled());
  // A new identical request does not join the abandoned group.
  RequestPtr d = Submit("x");
  EXPECT_EQ(queue_->Depth(), 1u);
  EXPECT_EQ(collapser_->groups(), 1u);
}

TEST_F(RequestCollapserTest, EachMemberKeepsItsOwnDeadline) {
  RequestPtr patient = Submit("x");
  RequestPtr hurried = Submit("x", kFree, /*client_timeout_us=*/100'000);
  ex_.Advance(milliseconds(100));
  ASSERT_NE(OutcomeOf(hurried), nullptr);
  EXPECT_EQ(OutcomeOf(hurried)->status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(OutcomeOf(hurried)->status.message(),
            "deadline passed after 100 ms, waiting for the answer of an identical request");
  EXPECT_EQ(OutcomeOf(patient), nullptr);
  RequestPtr carrier = PopHead();
  ASSERT_NE(carrier, nullptr);
  Answer(carrier, "y");
  EXPECT_EQ(OutcomeOf(patient)->output, "y");
  EXPECT_EQ(OutcomeOf(hurried)->status.code(), ErrorCode::kDeadlineExceeded);
}

TEST_F(RequestCollapserTest, ACarrierThatExpiresIsReplacedForTheMembersWithTime) {
  // The carrier is made from the first request, whose client allows 100 ms.
  RequestPtr hurried = Submit("x", kFree, /*client_timeout_us=*/100'000);
  ex_.Advance(milliseconds(10));
  RequestPtr patient = Submit("x");
  ex_.Advance(milliseconds(90));
  ASSERT_NE(OutcomeOf(hurried), nullptr);
  EXPECT_EQ(OutcomeOf(hurried)->status.code(), ErrorCode::kDeadlineExceeded);
  // The dispatcher finds the carrier past its dispatch deadline.
  std::vector<RequestPtr> batch, dropped;
  queue_->PopBatch(4, ex_.Now(), &batch, &dropped);
  ASSERT_EQ(dropped.size(), 1u);
  const std::string first_carrier = dropped[0]->id;
  InferenceOutcome expired;
  expired.status = DeadlineExceeded("deadline passed after 100 ms in queue");
  dropped[0]->Complete(std::move(expired));
  EXPECT_EQ(OutcomeOf(patient), nullptr);  // still within its own deadline
  RequestPtr next = PopHead();
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->id, first_carrier);
  EXPECT_EQ(next->total_deadline, patient->total_deadline);
  Answer(next, "y");
  EXPECT_EQ(OutcomeOf(patient)->output, "y");
  EXPECT_FALSE(OutcomeOf(patient)->collapsed);  // its own item
}

TEST_F(RequestCollapserTest, AnErrorAnswersEveryMember) {
  RequestPtr a = Submit("x");
  RequestPtr b = Submit("x");
  RequestPtr carrier = PopHead();
  InferenceOutcome failed;
  failed.status = BackendError("model 'm' failed after 3 attempts");
  carrier->Complete(std::move(failed));
  EXPECT_EQ(OutcomeOf(a)->status.code(), ErrorCode::kBackendError);
  EXPECT_EQ(OutcomeOf(b)->status.code(), ErrorCode::kBackendError);
  EXPECT_EQ(queue_->Depth(), 0u);  // not retried here: the dispatcher retries
  EXPECT_EQ(cache_->stats().stores, 0u);
}

TEST_F(RequestCollapserTest, AMoreUrgentRequestDoesNotWaitBehindALessUrgentCarrier) {
  RequestPtr free_req = Submit("x", kFree);  // priority deadline +1.5 s
  ex_.Advance(milliseconds(10));
  RequestPtr urgent = Submit("x", kEnterprise);  // +0.41 s: starts its own group
  EXPECT_EQ(queue_->Depth(), 2u);
  RequestPtr urgent_too = Submit("x", kEnterprise);  // joins the urgent group
  RequestPtr free_too = Submit("x", kFree);          // also: the urgent one is sooner
  EXPECT_EQ(queue_->Depth(), 2u);
  RequestPtr head = PopHead();
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->principal.tier, kEnterprise);
  Answer(head, "y");
  EXPECT_EQ(OutcomeOf(urgent)->output, "y");
  EXPECT_EQ(OutcomeOf(urgent_too)->output, "y");
  EXPECT_EQ(OutcomeOf(free_too)->output, "y");
  EXPECT_EQ(OutcomeOf(free_req), nullptr);  // its own group's carrier is still queued
  Answer(PopHead(), "y");
  EXPECT_EQ(OutcomeOf(free_req)->output, "y");
}

TEST_F(RequestCollapserTest, AFullQueueRefusesTheRequestAndLeavesNoGroup) {
  for (const char* input : {"a", "b", "c", "d"}) Submit(input);
  auto r = std::make_shared<InferenceRequest>();
  r->model = "m";
  r->input = "e";
  Status s = service_->Submit(r, 0);
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(collapser_->groups(), 4u);
  EXPECT_EQ(queue_->Depth(), 4u);
}

// Async requests wait behind synchronous ones: one joins a synchronous
// group, and a group an async request starts queues an async carrier, which
// a synchronous request does not wait for.
TEST_F(RequestCollapserTest, AsyncAndSynchronousRequestsShareOnlyInTheQueuesOrder) {
  RequestPtr sync = Submit("x");
  auto later = std::make_shared<InferenceRequest>();
  later->id = NewRequestId();
  later->model = "m";
  later->input = "x";
  later->async = true;
  later->set_on_complete(
      [this, raw = later.get()](InferenceOutcome&& o) { outcomes_[raw->id] = std::move(o); });
  ASSERT_TRUE(service_->Submit(later, 0).ok());
  EXPECT_EQ(queue_->Depth(), 1u);  // joined the synchronous carrier
  EXPECT_EQ(queue_->AsyncDepth(), 0u);

  auto first_async = std::make_shared<InferenceRequest>();
  first_async->id = NewRequestId();
  first_async->model = "m";
  first_async->input = "y";
  first_async->async = true;
  ASSERT_TRUE(service_->Submit(first_async, 0).ok());
  EXPECT_EQ(queue_->AsyncDepth(), 1u);  // its carrier is async
  RequestPtr urgent = Submit("y");      // sooner than the async carrier: a group of its own
  EXPECT_EQ(queue_->Depth(), 3u);
  EXPECT_EQ(queue_->AsyncDepth(), 1u);

  Answer(PopHead(), "x-answer");
  EXPECT_EQ(OutcomeOf(sync)->output, "x-answer");
  EXPECT_TRUE(OutcomeOf(later)->collapsed);
}

TEST_F(RequestCollapserTest, ARequestWhoseClientLeftJoinsNothing) {
  RequestPtr a = Submit("x");
  auto gone = std::make_shared<InferenceRequest>();
  gone->id = NewRequestId();
  gone->model = "m";
  gone->input = "x";
  gone->Cancel();  // its client left before Submit() ran
  EXPECT_EQ(service_->Submit(gone, 0).code(), ErrorCode::kCancelled);
  EXPECT_EQ(collapser_->waiting(), 1u);
  Answer(PopHead(), "y");
  EXPECT_EQ(OutcomeOf(a)->output, "y");
  EXPECT_EQ(collapser_->collapsed(), 0u);
}

TEST_F(RequestCollapserTest, OnlySuccessfulSharedAnswersCountAsCollapsed) {
  Submit("x");
  Submit("x");
  InferenceOutcome failed;
  failed.status = BackendError("model 'm' failed after 3 attempts");
  PopHead()->Complete(std::move(failed));
  EXPECT_EQ(collapser_->collapsed(), 0u);
}

// Strict ordering serves tiers apart: a request joins only a queued
// carrier of its own tier, whichever deadline is sooner.
TEST(RequestCollapserStrictTest, OnlyTheSameTierJoinsAQueuedCarrier) {
  testing::FakeExecutor ex;
  std::vector<TierPolicy> tiers = {TierPolicy{"free", 0, 400'000, 2'000'000, 4'000'000},
                                   TierPolicy{"enterprise", 2, 1'500'000, 2'000'000, 4'000'000}};
  auto queue = std::move(MemoryQueue::Create({10, QueueOrdering::kStrictPriority, tiers})).value();
  auto collapser =
      std::move(RequestCollapser::Create({queue.get(), &ex, QueueOrdering::kStrictPriority}))
          .value();
  InferenceService::Options o;
  o.tiers = tiers;
  o.models = {{"m", "m-v1", 100, 16, queue.get(), nullptr, nullptr, true, collapser.get()}};
  o.clock = &ex.clock();
  auto service = std::move(InferenceService::Create(o)).value();
  auto submit = [&](TierIndex tier) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = NewRequestId();
    r->principal.tier = tier;
    r->model = "m";
    r->input = "x";
    EXPECT_TRUE(service->Submit(r, 0).ok());
  };
  submit(kFree);
  submit(kEnterprise);  // sooner in strict order despite a later deadline
  EXPECT_EQ(queue->Depth(), 2u);
  submit(kFree);        // joins the free group
  submit(kEnterprise);  // joins the enterprise group
  EXPECT_EQ(queue->Depth(), 2u);
  EXPECT_EQ(collapser->waiting(), 4u);
}

TEST(RequestCollapserCreateTest, NeedsAQueueAndAnExecutor) {
  testing::FakeExecutor ex;
  EXPECT_EQ(RequestCollapser::Create({nullptr, &ex}).status().message(),
            "request collapser: no queue");
}

}  // namespace
}  // namespace sluice
