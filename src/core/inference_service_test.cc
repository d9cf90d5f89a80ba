#include "core/inference_service.h"

#include <gtest/gtest.h>

#include "core/memory_queue.h"
#include "core/memory_request_log.h"
#include "core/memory_result_cache.h"
#include "limits/memory_rate_limiter.h"
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

TEST_F(InferenceServiceTest, AnAsyncRequestWaitsBehindWithTheTiersAsyncBudget) {
  auto r = Req(1);
  r->async = true;
  ASSERT_TRUE(service_->Submit(r, 0).ok());
  // 60 s in the queue (the default), then the 3.6 s a synchronous enterprise
  // request has after its 400 ms budget.
  EXPECT_EQ(r->priority_deadline - r->arrival, milliseconds(60'000));
  EXPECT_EQ(r->dispatch_deadline - r->arrival, milliseconds(60'000));
  EXPECT_EQ(r->total_deadline - r->arrival, milliseconds(63'600));
  EXPECT_EQ(queue_->AsyncDepth(), 1u);
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
  AdmissionDecision full;
  EXPECT_EQ(service_->Submit(Req(0), 0, &full).code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(service_->UnavailableReason(full), "queue_full");
  EXPECT_EQ(service_->TotalQueueDepth(), 2u);
  service_->BeginShutdown();
  AdmissionDecision closing;
  EXPECT_EQ(service_->Submit(Req(0), 0, &closing).code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(service_->UnavailableReason(closing), "shutting_down");
}

TEST_F(InferenceServiceTest, TheRequestLogKeepsTheInternalDetailOfAFailure) {
  auto r = Req(0);
  ASSERT_TRUE(service_->Submit(r, 0).ok());
  InferenceOutcome failed;
  failed.status = BackendError("model 'm' failed after 3 attempts (the backend reported an error)");
  failed.detail = "http:http://10.0.0.7:8000#0: inference API answered HTTP 500: CUDA OOM";
  service_->Finish(*r, failed, 12);
  auto rec = log_->Lookup(r->id);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->http_status, 502);
  EXPECT_EQ(rec->error,
            "model 'm' failed after 3 attempts (the backend reported an error); internal: "
            "http:http://10.0.0.7:8000#0: inference API answered HTTP 500: CUDA OOM");
}

// A model with a result cache; deterministic: every request may be cached.
class InferenceServiceCacheTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    tiers_ = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000}};
    queue_ =
        std::move(MemoryQueue::Create({10, QueueOrdering::kEarliestDeadlineFirst, tiers_})).value();
    log_ = std::move(MemoryRequestLog::Create({64})).value();
    MemoryResultCache::Options co;
    co.clock = &ex_.clock();
    cache_ = std::move(MemoryResultCache::Create(co)).value();
    InferenceService::Options o;
    o.tiers = tiers_;
    o.models = {{"m", "m-v1", 100, 16, queue_.get(), nullptr, cache_.get(), GetParam()}};
    o.log = log_.get();
    o.clock = &ex_.clock();
    service_ = std::move(InferenceService::Create(o)).value();
  }
  // A request for `input`; `completed` receives its outcome.
  RequestPtr Req(const std::string& input, std::optional<double> temperature,
                 std::optional<InferenceOutcome>* completed) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = "req_" + std::to_string(next_++);
    r->model = "m";
    r->input = input;
    r->params.temperature = temperature;
    r->set_on_complete([completed](InferenceOutcome&& o) { *completed = std::move(o); });
    return r;
  }
  // Answers the request at the queue's head as a batch would, and finishes it.
  void AnswerHead(const std::string& output) {
    std::vector<RequestPtr> batch, dropped;
    queue_->PopBatch(1, ex_.Now(), &batch, &dropped);
    ASSERT_EQ(batch.size(), 1u);
    InferenceOutcome ok;
    ok.output = output;
    ok.tokens_used = 9;
    ok.model_version = "m-v1";
    service_->Finish(*batch[0], ok, 5);
    batch[0]->Complete(std::move(ok));
  }
  testing::FakeExecutor ex_;
  std::vector<TierPolicy> tiers_;
  std::unique_ptr<MemoryQueue> queue_;
  std::unique_ptr<MemoryRequestLog> log_;
  std::unique_ptr<MemoryResultCache> cache_;
  std::unique_ptr<InferenceService> service_;
  int next_ = 0;
};

TEST_P(InferenceServiceCacheTest, ARepeatIsCompletedFromTheCacheWithoutQueueing) {
  std::optional<InferenceOutcome> first, repeat;
  auto a = Req("hello", 0.0, &first);
  ASSERT_TRUE(service_->Submit(a, 0).ok());
  EXPECT_FALSE(a->cache_key.empty());
  EXPECT_EQ(queue_->Depth(), 1u);
  ASSERT_NO_FATAL_FAILURE(AnswerHead("world"));
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->cached);

  auto b = Req("hello", 0.0, &repeat);
  ASSERT_TRUE(service_->Submit(b, 0).ok());
  ASSERT_TRUE(repeat.has_value());  // completed within Submit()
  EXPECT_TRUE(repeat->cached);
  EXPECT_EQ(repeat->output, "world");
  EXPECT_EQ(repeat->tokens_used, 9u);
  EXPECT_EQ(repeat->model_version, "m-v1");
  EXPECT_EQ(queue_->Depth(), 0u);
  EXPECT_EQ(b->cache_key, a->cache_key);
  // The log saw it admitted (and the front door's Finish() completes it there).
  ASSERT_TRUE(log_->Lookup(b->id).has_value());
  service_->Finish(*b, *repeat, 1);
  EXPECT_EQ(cache_->stats().stores, 1u);  // a cached answer is not stored again
  EXPECT_EQ(cache_->stats().hits, 1u);
}

TEST_P(InferenceServiceCacheTest, WhatMayBeCachedDependsOnTheModelAndTheTemperature) {
  const bool deterministic = GetParam();
  std::optional<InferenceOutcome> out;
  auto warm = Req("hello", 0.7, &out);
  ASSERT_TRUE(service_->Submit(warm, 0).ok());
  EXPECT_EQ(warm->cache_key.empty(), !deterministic);
  auto unset = Req("hello", std::nullopt, &out);
  ASSERT_TRUE(service_->Submit(unset, 0).ok());
  EXPECT_EQ(unset->cache_key.empty(), !deterministic);
  EXPECT_EQ(queue_->Depth(), 2u);
}

TEST_P(InferenceServiceCacheTest, FailuresAreNotCached) {
  std::optional<InferenceOutcome> out;
  auto a = Req("hello", 0.0, &out);
  ASSERT_TRUE(service_->Submit(a, 0).ok());
  std::vector<RequestPtr> batch, dropped;
  queue_->PopBatch(1, ex_.Now(), &batch, &dropped);
  ASSERT_EQ(batch.size(), 1u);
  InferenceOutcome failed;
  failed.status = BackendError("model 'm' failed");
  service_->Finish(*batch[0], failed, 5);
  auto b = Req("hello", 0.0, &out);
  ASSERT_TRUE(service_->Submit(b, 0).ok());
  EXPECT_EQ(queue_->Depth(), 1u);  // queued: nothing was cached
  EXPECT_EQ(cache_->stats().stores, 0u);
}

INSTANTIATE_TEST_SUITE_P(DeterministicOrNot, InferenceServiceCacheTest, ::testing::Bool());

TEST(InferenceServiceLimitsTest, ChargesRateLimitsAndReconcilesTokens) {
  testing::FakeExecutor ex;
  std::vector<TierPolicy> tiers = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000}};
  auto queue =
      std::move(MemoryQueue::Create({10, QueueOrdering::kEarliestDeadlineFirst, tiers})).value();
  auto limiter = std::move(MemoryRateLimiter::Create({64, 1000, &ex.clock()})).value();
  InferenceService::Options o;
  o.tiers = tiers;
  o.models = {{"m", "m-v1", 100, 16, queue.get()}};
  o.limiter = limiter.get();
  o.clock = &ex.clock();
  auto service = std::move(InferenceService::Create(o)).value();

  Principal p{"key", 0, "free", {2, 100}};
  EXPECT_EQ(service->TokenCost(0, "12345678", 0), 2 + 16);  // 8 bytes ~ 2 tokens + default
  RateLimitDecision first = service->ChargeRateLimit(p, 60, 0, false);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.tokens.remaining, 40);
  RateLimitDecision over_tokens = service->ChargeRateLimit(p, 60, 0, false);
  EXPECT_FALSE(over_tokens.allowed);
  EXPECT_EQ(over_tokens.limited_by, RateLimitKind::kTokens);

  // The first request used only 10 of its 60 tokens: 50 come back.
  InferenceRequest done;
  done.principal = p;
  done.charged_tokens = 60;
  InferenceOutcome used;
  used.tokens_used = 10;
  service->Finish(done, used, 1.0);
  RateLimitDecision after = service->ChargeRateLimit(p, 60, 0, false);
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(service->ChargeRateLimit(p, 1, 0, false).limited_by,
            RateLimitKind::kRequests);  // 2 rpm
}

// A model whose queue charges (a gateway's Redis queue) is left to it: the
// service charges, refunds and settles only the other models' requests.
TEST(InferenceServiceLimitsTest, AQueueThatChargesIsLeftToCharge) {
  testing::FakeExecutor ex;
  std::vector<TierPolicy> tiers = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000}};
  auto queue =
      std::move(MemoryQueue::Create({10, QueueOrdering::kEarliestDeadlineFirst, tiers})).value();
  auto limiter = std::move(MemoryRateLimiter::Create({64, 1000, &ex.clock()})).value();
  InferenceService::Options o;
  o.tiers = tiers;
  InferenceService::Model charged_here{"here", "v1", 100, 16, queue.get()};
  InferenceService::Model charged_by_queue{"queued", "v1", 100, 16, queue.get()};
  charged_by_queue.queue_charges = true;
  o.models = {charged_here, charged_by_queue};
  o.limiter = limiter.get();
  o.clock = &ex.clock();
  auto service = std::move(InferenceService::Create(o)).value();

  Principal p{"key", 0, "free", {2, 100}};
  for (int i = 0; i < 5; ++i) {
    RateLimitDecision d = service->ChargeRateLimit(p, 60, 1, false);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.requests.limit, 0);  // no check ran: no header figures
  }
  InferenceRequest done;
  done.principal = p;
  done.model_index = 1;
  done.charged_tokens = 60;
  InferenceOutcome used;
  used.tokens_used = 10;
  service->Finish(done, used, 1.0);        // no tokens given back here...
  service->RefundTokens(p, 60, 1, false);  // ...nor here
  RateLimitDecision first = service->ChargeRateLimit(p, 60, 0, false);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.tokens.remaining, 40);  // untouched by the other model's requests
  EXPECT_EQ(service->ChargeRateLimit(p, 1, -1, false).requests.remaining, 0);  // no model: charged
  // An async request is charged here even for that model (a gateway may
  // hold it before its queue).
  EXPECT_FALSE(service->ChargeRateLimit(p, 1, 1, /*async=*/true).allowed);

  // Its answers must not skip the queue.
  MemoryResultCache::Options co;
  auto cache = std::move(MemoryResultCache::Create(co)).value();
  charged_by_queue.cache = cache.get();
  o.models = {charged_by_queue};
  EXPECT_EQ(InferenceService::Create(o).status().code(), ErrorCode::kInvalidArgument);
}

TEST(InferenceServiceLimitsTest, NoLimitsConfiguredMeansAllowed) {
  auto queue = std::move(MemoryQueue::Create(
                             {10, QueueOrdering::kEarliestDeadlineFirst, {TierPolicy{"free"}}}))
                   .value();
  InferenceService::Options o;
  o.tiers = {TierPolicy{"free"}};
  o.models = {{"m", "m-v1", 100, 16, queue.get()}};
  auto service = std::move(InferenceService::Create(o)).value();
  Principal p{"key", 0, "free", {}};
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(service->ChargeRateLimit(p, 1000, 0, false).allowed);
}

TEST(InferenceServiceLimitsTest, AdmissionRejectsBeforeQueueing) {
  testing::FakeExecutor ex;
  std::vector<TierPolicy> tiers = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000},
                                   TierPolicy{"enterprise", 2, 400'000, 2'000'000, 4'000'000}};
  auto queue =
      std::move(MemoryQueue::Create({1000, QueueOrdering::kEarliestDeadlineFirst, tiers})).value();
  BatchCostModel::Options co;  // 34 ms + 0.5 ms per item
  co.clock = &ex.clock();
  auto cost = std::move(BatchCostModel::Create(co)).value();
  AdmissionController::Options ao;
  ao.model = "m";
  ao.tiers = {{"free", 0, 3}, {"enterprise", 2, kNoQueueDepthLimit}};
  ao.cost_model = cost.get();
  ao.clock = &ex.clock();
  auto admission = std::move(AdmissionController::Create(ao)).value();
  InferenceService::Options o;
  o.tiers = tiers;
  o.models = {{"m", "m-v1", 100, 16, queue.get(), admission.get()}};
  o.clock = &ex.clock();
  auto service = std::move(InferenceService::Create(o)).value();
  auto make = [](TierIndex tier) {
    auto r = std::make_shared<InferenceRequest>();
    r->principal.tier = tier;
    r->model = "m";
    return r;
  };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(service->Submit(make(0), 0).ok());
  AdmissionDecision why;
  Status shed = service->Submit(make(0), 0, &why);  // 4 queued > free's threshold of 3
  EXPECT_EQ(shed.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(why.reason, AdmissionReject::kQueueDepthThreshold);
  EXPECT_STREQ(service->UnavailableReason(why), "queue_depth_threshold");
  EXPECT_GE(why.retry_after_s, 1);
  EXPECT_EQ(queue->Depth(), 4u);
  EXPECT_TRUE(service->Submit(make(1), 0).ok());  // enterprise has no threshold

  // A client deadline shorter than the fastest batch (34.5 ms) is refused
  // at once with a message naming the header, never queued.
  Status too_short = service->Submit(make(1), /*client_timeout_us=*/5'000);
  EXPECT_EQ(too_short.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_short.message(),
            "X-Request-Timeout-Ms: 5 ms is shorter than the fastest batch of model 'm' (34 ms)");
  EXPECT_EQ(queue->Depth(), 5u);

  // An async backlog waits behind every synchronous request: it makes no
  // queue too deep, for sync requests or for more async ones.
  std::vector<RequestPtr> drained;
  queue->RemoveAll(&drained);
  for (int i = 0; i < 10; ++i) {
    auto r = make(0);
    r->async = true;
    ASSERT_TRUE(service->Submit(r, 0).ok()) << i;
  }
  EXPECT_EQ(queue->AsyncDepth(), 10u);
  EXPECT_TRUE(service->Submit(make(0), 0).ok());
}

TEST(InferenceServiceLimitsTest, AClientDeadlineExpiresItsRequestButNeverMovesItAhead) {
  testing::FakeExecutor ex;
  std::vector<TierPolicy> tiers = {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000},
                                   TierPolicy{"enterprise", 2, 400'000, 2'000'000, 4'000'000}};
  auto queue =
      std::move(MemoryQueue::Create({1000, QueueOrdering::kEarliestDeadlineFirst, tiers})).value();
  InferenceService::Options o;
  o.tiers = tiers;
  o.models = {{"m", "m-v1", 100, 16, queue.get(), nullptr}};
  o.clock = &ex.clock();
  auto service = std::move(InferenceService::Create(o)).value();
  auto make = [](TierIndex tier, const std::string& input) {
    auto r = std::make_shared<InferenceRequest>();
    r->principal.tier = tier;
    r->model = "m";
    r->input = input;
    return r;
  };
  ASSERT_TRUE(service->Submit(make(1, "enterprise"), 0).ok());
  ex.Advance(std::chrono::milliseconds(1));
  RequestPtr hurried = make(0, "free-50ms");
  ASSERT_TRUE(service->Submit(hurried, /*client_timeout_us=*/50'000).ok());
  EXPECT_EQ(hurried->dispatch_deadline, hurried->arrival + std::chrono::milliseconds(50));
  EXPECT_EQ(hurried->priority_deadline, hurried->arrival + std::chrono::milliseconds(1500));
  std::vector<RequestPtr> batch, dropped;
  queue->PopBatch(1, ex.Now(), &batch, &dropped);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0]->input, "enterprise");  // the header bought no priority
  ex.Advance(std::chrono::milliseconds(60));
  std::vector<RequestPtr> expired;
  queue->RemoveExpired(ex.Now(), &expired);  // ...but expires its own request
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->input, "free-50ms");
  EXPECT_EQ(queue->Depth(), 0u);
}

TEST_F(InferenceServiceTest, FindsModelsByName) {
  EXPECT_EQ(service_->FindModel("m"), 0);
  EXPECT_EQ(service_->FindModel("nope"), -1);
}

}  // namespace
}  // namespace sluice
