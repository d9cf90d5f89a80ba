#include "core/memory_queue.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;

std::vector<TierPolicy> Tiers() {
  return {TierPolicy{"free", 0, 1'500'000, 2'000'000, 4'000'000},
          TierPolicy{"paid", 1, 800'000, 2'000'000, 4'000'000},
          TierPolicy{"enterprise", 2, 400'000, 2'000'000, 4'000'000}};
}

class MemoryQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<MemoryQueue> Make(QueueOrdering ordering, size_t capacity = 100) {
    auto q = MemoryQueue::Create({capacity, ordering, Tiers()});
    EXPECT_TRUE(q.ok());
    return std::move(q).value();
  }
  // A request of `tier` arriving at t0 + at_ms with the tier's budget.
  RequestPtr Req(const std::string& name, TierIndex tier, int at_ms) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = name;
    r->principal.tier = tier;
    r->arrival = t0_ + milliseconds(at_ms);
    r->dispatch_deadline = r->arrival + Micros(Tiers()[tier].latency_budget_us);
    r->total_deadline = r->arrival + milliseconds(4000);
    return r;
  }
  std::vector<std::string> PopNames(RequestQueue& q, size_t max, int now_ms,
                                    std::vector<std::string>* dropped_names = nullptr) {
    std::vector<RequestPtr> batch, dropped;
    q.PopBatch(max, t0_ + milliseconds(now_ms), &batch, &dropped);
    std::vector<std::string> names;
    for (auto& r : batch) names.push_back(r->input);
    if (dropped_names) {
      for (auto& r : dropped) dropped_names->push_back(r->input);
    }
    return names;
  }
  TimePoint t0_ = TimePoint{} + std::chrono::hours(1);
};

TEST_F(MemoryQueueTest, EdfOrdersByDeadlineAcrossTiers) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  // free at 0 -> deadline 1500; paid at 100 -> 900; enterprise at 600 -> 1000.
  ASSERT_TRUE(q->Push(Req("free0", 0, 0)).ok());
  ASSERT_TRUE(q->Push(Req("paid100", 1, 100)).ok());
  ASSERT_TRUE(q->Push(Req("ent600", 2, 600)).ok());
  ASSERT_TRUE(q->Push(Req("free1", 0, 1)).ok());
  EXPECT_EQ(PopNames(*q, 10, 700),
            (std::vector<std::string>{"paid100", "ent600", "free0", "free1"}));
}

TEST_F(MemoryQueueTest, EdfDoesNotStarveOldFreeRequests) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  ASSERT_TRUE(q->Push(Req("old-free", 0, 0)).ok());     // deadline 1500
  ASSERT_TRUE(q->Push(Req("late-ent", 2, 1200)).ok());  // deadline 1600
  EXPECT_EQ(PopNames(*q, 1, 1300), (std::vector<std::string>{"old-free"}));
}

TEST_F(MemoryQueueTest, StrictPriorityServesHighestTierFirstAndFifoWithin) {
  auto q = Make(QueueOrdering::kStrictPriority);
  ASSERT_TRUE(q->Push(Req("free0", 0, 0)).ok());
  ASSERT_TRUE(q->Push(Req("paid1", 1, 1)).ok());
  ASSERT_TRUE(q->Push(Req("ent2", 2, 2)).ok());
  ASSERT_TRUE(q->Push(Req("ent3", 2, 3)).ok());
  ASSERT_TRUE(q->Push(Req("paid4", 1, 4)).ok());
  EXPECT_EQ(PopNames(*q, 10, 10),
            (std::vector<std::string>{"ent2", "ent3", "paid1", "paid4", "free0"}));
}

TEST_F(MemoryQueueTest, EqualDeadlinesGoToTheHigherTier) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  auto a = Req("free", 0, 0), b = Req("ent", 2, 0);
  b->dispatch_deadline = a->dispatch_deadline;
  ASSERT_TRUE(q->Push(a).ok());
  ASSERT_TRUE(q->Push(b).ok());
  EXPECT_EQ(PopNames(*q, 1, 0), (std::vector<std::string>{"ent"}));
}

TEST_F(MemoryQueueTest, AsyncRequestsAreCountedApartAndWaitBehind) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  auto async = Req("async", 2, 0);
  async->async = true;
  async->dispatch_deadline = async->arrival + milliseconds(60'000);
  ASSERT_TRUE(q->Push(async).ok());
  ASSERT_TRUE(q->Push(Req("free", 0, 10)).ok());
  EXPECT_EQ(q->Depth(), 2u);
  EXPECT_EQ(q->AsyncDepth(), 1u);
  EXPECT_EQ(PopNames(*q, 1, 20), std::vector<std::string>{"free"});  // its deadline is sooner
  EXPECT_EQ(q->AsyncDepth(), 1u);
  EXPECT_EQ(PopNames(*q, 1, 20), std::vector<std::string>{"async"});
  EXPECT_EQ(q->AsyncDepth(), 0u);
  // The capacity bounds synchronous requests only.
  auto small = MemoryQueue::Create({1, QueueOrdering::kEarliestDeadlineFirst, Tiers()}).value();
  auto waiting = Req("async-1", 0, 0);
  waiting->async = true;
  ASSERT_TRUE(small->Push(waiting).ok());
  ASSERT_TRUE(small->Push(Req("sync", 0, 0)).ok());
  EXPECT_EQ(small->Push(Req("sync-2", 0, 0)).code(), ErrorCode::kUnavailable);
  auto more = Req("async-2", 0, 0);
  more->async = true;
  EXPECT_TRUE(small->Push(more).ok());
  auto expiring = Req("async-expiring", 0, 0);
  expiring->async = true;
  ASSERT_TRUE(q->Push(expiring).ok());
  std::vector<RequestPtr> expired;
  q->RemoveExpired(t0_ + milliseconds(5'000), &expired);
  EXPECT_EQ(expired.size(), 1u);
  EXPECT_EQ(q->AsyncDepth(), 0u);
  ASSERT_TRUE(q->Push(async).ok());
  std::vector<RequestPtr> all;
  q->RemoveAll(&all);
  EXPECT_EQ(q->AsyncDepth(), 0u);
}

TEST_F(MemoryQueueTest, BoundedQueueRejectsWhenFullAndKeepsContents) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst, 2);
  ASSERT_TRUE(q->Push(Req("a", 0, 0)).ok());
  ASSERT_TRUE(q->Push(Req("b", 0, 1)).ok());
  Status s = q->Push(Req("c", 2, 2));
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(q->Depth(), 2u);
  EXPECT_EQ(PopNames(*q, 10, 5), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(q->Push(Req("d", 0, 6)).ok());
}

TEST_F(MemoryQueueTest, PopDropsExpiredAndCancelledWithoutCountingThem) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  ASSERT_TRUE(q->Push(Req("ent-expired", 2, 0)).ok());  // deadline 400
  auto cancelled = Req("cancelled", 1, 100);
  cancelled->Cancel();
  ASSERT_TRUE(q->Push(cancelled).ok());
  ASSERT_TRUE(q->Push(Req("free-ok", 0, 0)).ok());  // deadline 1500
  ASSERT_TRUE(q->Push(Req("free-ok2", 0, 1)).ok());
  std::vector<std::string> dropped;
  EXPECT_EQ(PopNames(*q, 1, 500, &dropped), (std::vector<std::string>{"free-ok"}));
  EXPECT_EQ(dropped, (std::vector<std::string>{"ent-expired", "cancelled"}));
  EXPECT_EQ(q->Depth(), 1u);
}

TEST_F(MemoryQueueTest, RemoveExpiredTakesOnlyPastDeadlines) {
  auto q = Make(QueueOrdering::kStrictPriority);
  ASSERT_TRUE(q->Push(Req("ent", 2, 0)).ok());   // 400
  ASSERT_TRUE(q->Push(Req("paid", 1, 0)).ok());  // 800
  ASSERT_TRUE(q->Push(Req("free", 0, 0)).ok());  // 1500
  std::vector<RequestPtr> expired;
  q->RemoveExpired(t0_ + milliseconds(900), &expired);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(q->Depth(), 1u);
  EXPECT_EQ(*q->EarliestDeadline(), t0_ + milliseconds(1500));
}

TEST_F(MemoryQueueTest, OldestArrivalAndEarliestDeadline) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  EXPECT_FALSE(q->OldestArrival().has_value());
  ASSERT_TRUE(q->Push(Req("free", 0, 0)).ok());
  ASSERT_TRUE(q->Push(Req("ent", 2, 50)).ok());
  EXPECT_EQ(*q->OldestArrival(), t0_);
  EXPECT_EQ(*q->EarliestDeadline(), t0_ + milliseconds(450));
}

TEST_F(MemoryQueueTest, QueuedAheadCountsWhatGoesFirst) {
  auto edf = Make(QueueOrdering::kEarliestDeadlineFirst);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(edf->Push(Req("free", 0, i)).ok());  // ~1500
  ASSERT_TRUE(edf->Push(Req("paid", 1, 0)).ok());                              // 800
  EXPECT_EQ(edf->QueuedAhead(2, t0_ + milliseconds(400)), 0u);   // a new enterprise one
  EXPECT_EQ(edf->QueuedAhead(1, t0_ + milliseconds(900)), 1u);   // behind the paid one
  EXPECT_EQ(edf->QueuedAhead(0, t0_ + milliseconds(1600)), 6u);  // behind everything
  auto strict = Make(QueueOrdering::kStrictPriority);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(strict->Push(Req("free", 0, i)).ok());
  ASSERT_TRUE(strict->Push(Req("ent", 2, 0)).ok());
  EXPECT_EQ(strict->QueuedAhead(2, t0_), 1u);
  EXPECT_EQ(strict->QueuedAhead(1, t0_), 1u);
  EXPECT_EQ(strict->QueuedAhead(0, t0_), 6u);
}

TEST_F(MemoryQueueTest, NotifyFiresOnceWhenDepthReached) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  int fired = 0;
  ASSERT_TRUE(q->NotifyAtDepth(2, [&] { ++fired; }));
  ASSERT_TRUE(q->Push(Req("a", 0, 0)).ok());
  EXPECT_EQ(fired, 0);
  ASSERT_TRUE(q->Push(Req("b", 0, 0)).ok());
  EXPECT_EQ(fired, 1);
  ASSERT_TRUE(q->Push(Req("c", 0, 0)).ok());
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(q->NotifyAtDepth(3, [&] { ++fired; }));  // already there
}

TEST_F(MemoryQueueTest, AShortenedDeadlineExpiresItsRequestInPlaceWithoutMovingIt) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  // Free requests keep the tier's order (priority deadline arrival + 1.5 s)
  // even when their client shortened their own deadline.
  auto a = Req("a", 0, 0), hurried = Req("hurried", 0, 1), c = Req("c", 0, 2);
  for (auto& r : {a, hurried, c}) r->priority_deadline = r->dispatch_deadline;
  hurried->dispatch_deadline = hurried->arrival + milliseconds(50);
  auto ent = Req("ent", 2, 3);  // priority deadline 403 ms
  ent->priority_deadline = ent->dispatch_deadline;
  for (auto& r : {a, hurried, c, ent}) ASSERT_TRUE(q->Push(r).ok());
  EXPECT_EQ(q->Depth(), 4u);
  // Its 50 ms do not put it ahead of enterprise or of "a".
  EXPECT_EQ(*q->EarliestDeadline(), ent->priority_deadline);
  EXPECT_EQ(q->QueuedAhead(2, ent->priority_deadline), 0u);
  // At 60 ms it expires from the middle of its tier, found at once.
  std::vector<RequestPtr> expired;
  q->RemoveExpired(t0_ + milliseconds(60), &expired);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->input, "hurried");
  EXPECT_EQ(q->Depth(), 3u);
  // The rest keep their order, and the expired one is never popped again.
  std::vector<std::string> dropped;
  EXPECT_EQ(PopNames(*q, 10, 100, &dropped), (std::vector<std::string>{"ent", "a", "c"}));
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(q->Depth(), 0u);
  EXPECT_FALSE(q->EarliestDeadline().has_value());
}

TEST_F(MemoryQueueTest, AShortenedDeadlinePoppedInTimeLeavesNoTrace) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  auto hurried = Req("hurried", 0, 0);
  hurried->priority_deadline = hurried->dispatch_deadline;
  hurried->dispatch_deadline = hurried->arrival + milliseconds(50);
  ASSERT_TRUE(q->Push(hurried).ok());
  EXPECT_EQ(PopNames(*q, 10, 10), (std::vector<std::string>{"hurried"}));
  std::vector<RequestPtr> expired;
  q->RemoveExpired(t0_ + milliseconds(60), &expired);  // its side entry is stale
  EXPECT_TRUE(expired.empty());
  EXPECT_EQ(q->Depth(), 0u);
  // Popped after its own deadline: dropped (504), not batched.
  auto late = Req("late", 0, 100);
  late->priority_deadline = late->dispatch_deadline;
  late->dispatch_deadline = late->arrival + milliseconds(50);
  ASSERT_TRUE(q->Push(late).ok());
  std::vector<std::string> dropped;
  EXPECT_TRUE(PopNames(*q, 10, 200, &dropped).empty());
  EXPECT_EQ(dropped, (std::vector<std::string>{"late"}));
}

TEST_F(MemoryQueueTest, QueuedAheadCountsTheShareOfATierBeforeTheDeadline) {
  auto q = Make(QueueOrdering::kEarliestDeadlineFirst);
  // 100 free requests arriving 0..990 ms: priority deadlines 1500..2490 ms.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q->Push(Req("f" + std::to_string(i), 0, i * 10)).ok());
  const TimePoint mid = t0_ + milliseconds(1500 + 495);
  EXPECT_NEAR(static_cast<double>(q->QueuedAhead(2, mid)), 50.0, 1.0);
  EXPECT_EQ(q->QueuedAhead(2, t0_ + milliseconds(1000)), 0u);
  EXPECT_EQ(q->QueuedAhead(2, t0_ + milliseconds(3000)), 100u);
}

}  // namespace
}  // namespace sluice
