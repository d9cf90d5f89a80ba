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

}  // namespace
}  // namespace sluice
