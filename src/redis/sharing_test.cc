// RedisResultCache and CollapseLink against a real redis-server: caches and
// links of two "gateways" share one Redis.
#include <mutex>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "common/ids.h"
#include "redis/collapse_link.h"
#include "redis/redis_result_cache.h"
#include "redis/redis_test_fixture.h"
#include "redis/result_listener.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;

TEST(CachedAnswerTest, EncodesAndParses) {
  CachedAnswer a{"line one\nline two", 42, "v|1"};
  std::optional<CachedAnswer> b = ParseCachedAnswer(EncodeCachedAnswer(a));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->output, a.output);
  EXPECT_EQ(b->tokens_used, 42u);
  EXPECT_EQ(b->model_version, "v|1");
  EXPECT_FALSE(ParseCachedAnswer(""));
  EXPECT_FALSE(ParseCachedAnswer("x\nv\nout"));
  EXPECT_FALSE(ParseCachedAnswer("12\nno second line"));
}

class RedisResultCacheTest : public RedisTest {
 protected:
  std::unique_ptr<RedisResultCache> NewCache(uint64_t max_bytes, int64_t ttl_ms = 60'000) {
    RedisResultCache::Options o;
    o.connection = connection_.get();
    o.keys = KeySpace("t");
    o.model = "m";
    o.ttl_ms = ttl_ms;
    o.max_bytes = max_bytes;
    o.lookup_timeout_ms = 2'000;
    auto c = RedisResultCache::Create(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  // Waits until `cache` saw `n` stores answered.
  static bool StoresBecome(const RedisResultCache& cache, uint64_t n) {
    for (int i = 0; i < 500 && cache.stats().stores + cache.stats().failures < n; ++i) {
      std::this_thread::sleep_for(milliseconds(2));
    }
    return cache.stats().stores == n;
  }
};

TEST_F(RedisResultCacheTest, AnAnswerStoredByOneIsFoundByAnother) {
  auto a = NewCache(1 << 20), b = NewCache(1 << 20);
  EXPECT_FALSE(b->Lookup("k1"));
  a->Store("k1", CachedAnswer{"out", 3, "v1"});
  ASSERT_TRUE(StoresBecome(*a, 1));
  std::optional<CachedAnswer> hit = b->Lookup("k1");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->output, "out");
  EXPECT_EQ(b->stats().hits, 1u);
  EXPECT_EQ(b->stats().misses, 1u);
  EXPECT_EQ(a->stats().entries, 1u);
}

TEST_F(RedisResultCacheTest, TheLeastRecentlyUsedGoFirstToStayWithinTheBudget) {
  // Each entry: "1\nv\n", 100 bytes of output, its 2-byte key, the overhead.
  const uint64_t entry = 4 + 100 + 2 + RedisResultCache::kEntryOverheadBytes;
  auto c = NewCache(3 * entry);
  for (int i = 0; i < 3; ++i) {
    c->Store("k" + std::to_string(i), CachedAnswer{std::string(100, 'x'), 1, "v"});
    ASSERT_TRUE(StoresBecome(*c, i + 1));
  }
  ASSERT_TRUE(c->Lookup("k0"));  // used: k1 is now the least recent
  c->Store("k3", CachedAnswer{std::string(100, 'x'), 1, "v"});
  ASSERT_TRUE(StoresBecome(*c, 4));
  EXPECT_EQ(c->stats().evictions, 1u);
  EXPECT_EQ(c->stats().entries, 3u);
  EXPECT_LE(c->stats().bytes, 3 * entry);
  EXPECT_FALSE(c->Lookup("k1"));
  EXPECT_TRUE(c->Lookup("k0"));
  EXPECT_TRUE(c->Lookup("k3"));
}

TEST_F(RedisResultCacheTest, AnEntryExpiresAndItsIndexIsCleanedByALaterStore) {
  auto c = NewCache(1 << 20, /*ttl_ms=*/50);
  c->Store("old", CachedAnswer{"x", 1, "v"});
  ASSERT_TRUE(StoresBecome(*c, 1));
  // (Read around the cache: a hit would count as a use.)
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    std::this_thread::sleep_for(milliseconds(2));
    ReplyResult n = connection_->Call({"EXISTS", KeySpace("t").CacheEntryPrefix("m") + "old"});
    gone = n.ok() && n->AsInt() == 0;
  }
  ASSERT_TRUE(gone);
  EXPECT_FALSE(c->Lookup("old"));
  c->Store("new", CachedAnswer{"y", 1, "v"});
  ASSERT_TRUE(StoresBecome(*c, 2));
  EXPECT_EQ(c->stats().expired, 1u);
  EXPECT_EQ(c->stats().entries, 1u);
}

TEST_F(RedisResultCacheTest, AStoreThatFailsIsBypassed) {
  auto c = NewCache(1 << 20);
  // An entry of the wrong type: every read of it is an error reply.
  ASSERT_TRUE(
      connection_->Call({"HSET", KeySpace("t").CacheEntryPrefix("m") + "k", "f", "v"}).ok());
  EXPECT_FALSE(c->Lookup("k"));
  EXPECT_EQ(c->stats().failures, 1u);
  server_->Stop();
  EXPECT_FALSE(c->Lookup("k"));
  c->Store("k", CachedAnswer{"x", 1, "v"});
  EXPECT_GE(c->stats().failures, 2u);
  ASSERT_TRUE(server_->Restart().ok());
}

// A FrontDoorQueue that records what it is given.
class RecordingQueue final : public FrontDoorQueue {
 public:
  Status Push(RequestPtr req) override {
    std::lock_guard lock(mu_);
    pushed_.push_back(std::move(req));
    return Status::Ok();
  }
  size_t Depth() const override { return 0; }
  size_t QueuedAhead(TierIndex, TimePoint) const override { return 0; }
  void Withdraw(const RequestPtr& req) override {
    std::lock_guard lock(mu_);
    withdrawn_.push_back(req);
  }
  std::vector<RequestPtr> pushed() const {
    std::lock_guard lock(mu_);
    return pushed_;
  }
  size_t withdrawn() const {
    std::lock_guard lock(mu_);
    return withdrawn_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<RequestPtr> pushed_, withdrawn_;
};

// One gateway's side: its pending table, result channel and link.
struct Gateway {
  std::string id;
  PendingRequests pending;
  RecordingQueue queue;
  std::unique_ptr<RedisResultListener> listener;
  std::unique_ptr<CollapseLink> link;
};

class CollapseLinkTest : public RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    a_ = NewGateway("gw-a");
    b_ = NewGateway("gw-b");
  }
  std::unique_ptr<Gateway> NewGateway(
      const std::string& id, QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst) {
    auto g = std::make_unique<Gateway>();
    g->id = id;
    RedisResultListener::Options lo;
    lo.subscriber.host = "127.0.0.1";
    lo.subscriber.port = server_->port();
    lo.keys = KeySpace("t");
    lo.gateway_id = id;
    lo.on_result = [p = &g->pending](WireResult&& r) { p->Deliver(std::move(r)); };
    auto l = RedisResultListener::Create(std::move(lo));
    EXPECT_TRUE(l.ok());
    g->listener = std::move(l).value();
    EXPECT_TRUE(g->listener->WaitUntilSubscribed(milliseconds(5'000)));
    CollapseLink::Options o;
    o.connection = connection_.get();
    o.keys = KeySpace("t");
    o.queue = &g->queue;
    o.pending = &g->pending;
    o.gateway_id = id;
    o.ordering = ordering;
    g->link = std::move(CollapseLink::Create(o)).value();
    return g;
  }
  // A carrier of key "k" due in `budget`; its completions go to *out.
  RequestPtr Carrier(Micros budget, std::optional<InferenceOutcome>* out, uint32_t tier = 0) {
    auto r = std::make_shared<InferenceRequest>();
    r->id = NewRequestId();
    r->model = "m";
    r->input = "same";
    r->cache_key = "k";
    r->principal.tier = tier;
    r->arrival = SystemClock()->Now();
    r->priority_deadline = r->dispatch_deadline = r->arrival + budget;
    r->total_deadline = r->arrival + budget + Micros(5'000'000);
    r->set_on_complete([this, out](InferenceOutcome&& o) {
      std::lock_guard lock(mu_);
      *out = std::move(o);
    });
    return r;
  }
  bool Done(const std::optional<InferenceOutcome>& out) {
    return PollUntil([&] {
      std::lock_guard lock(mu_);
      return out.has_value();
    });
  }
  static bool PollUntil(const std::function<bool()>& f) {
    for (int i = 0; i < 2'500; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(milliseconds(2));
    }
    return f();
  }
  // The link `g` queued (waits for it).
  RequestPtr Queued(const Gateway& g, size_t n = 1) {
    EXPECT_TRUE(PollUntil([&] { return g.queue.pushed().size() >= n; }));
    std::vector<RequestPtr> p = g.queue.pushed();
    return p.size() >= n ? p[n - 1] : nullptr;
  }
  bool Attached(const Gateway& g, uint64_t n = 1) {
    return PollUntil([&] { return g.link->stats().attached >= n; });
  }
  static InferenceOutcome Answer(std::string output) {
    InferenceOutcome o;
    o.output = std::move(output);
    o.tokens_used = 2;
    return o;
  }

  std::mutex mu_;
  std::unique_ptr<Gateway> a_, b_;
};

TEST_F(CollapseLinkTest, AnotherGatewaysIdenticalRequestWaitsForTheFirstsItem) {
  std::optional<InferenceOutcome> got_a, got_b;
  ASSERT_TRUE(a_->link->Push(Carrier(Micros(100'000), &got_a)).ok());
  RequestPtr link = Queued(*a_);
  ASSERT_NE(link, nullptr);
  ASSERT_TRUE(b_->link->Push(Carrier(Micros(200'000), &got_b)).ok());
  ASSERT_TRUE(Attached(*b_));
  EXPECT_TRUE(b_->queue.pushed().empty());  // nothing queued at b
  link->Complete(Answer("shared"));         // the worker's answer, at a
  ASSERT_TRUE(Done(got_a));
  ASSERT_TRUE(Done(got_b));
  EXPECT_EQ(got_a->output, "shared");
  EXPECT_TRUE(got_b->status.ok()) << got_b->status.ToString();
  EXPECT_EQ(got_b->output, "shared");
  EXPECT_EQ(a_->link->stats().forwarded, 1u);
  EXPECT_EQ(b_->link->stats().remote_answers, 1u);
  // The key is free again: the next identical request queues.
  std::optional<InferenceOutcome> got_c;
  ASSERT_TRUE(b_->link->Push(Carrier(Micros(200'000), &got_c)).ok());
  EXPECT_NE(Queued(*b_), nullptr);
}

TEST_F(CollapseLinkTest, AMoreUrgentRequestDoesNotWaitForALaterOne) {
  std::optional<InferenceOutcome> got_a, got_b, got_c;
  ASSERT_TRUE(a_->link->Push(Carrier(Micros(5'000'000), &got_a)).ok());
  ASSERT_NE(Queued(*a_), nullptr);
  ASSERT_TRUE(b_->link->Push(Carrier(Micros(50'000), &got_b)).ok());
  EXPECT_NE(Queued(*b_), nullptr);  // owns: queued at b
  EXPECT_EQ(b_->link->stats().attached, 0u);
  // Later requests wait for the most urgent one.
  auto c = NewGateway("gw-c");
  ASSERT_TRUE(c->link->Push(Carrier(Micros(4'000'000), &got_c)).ok());
  ASSERT_TRUE(Attached(*c));
  Queued(*b_)->Complete(Answer("b's"));
  ASSERT_TRUE(Done(got_c));
  EXPECT_EQ(got_c->output, "b's");
}

TEST_F(CollapseLinkTest, StrictOrderingWaitsOnlyForTheSameTier) {
  auto x = NewGateway("gw-x", QueueOrdering::kStrictPriority);
  auto y = NewGateway("gw-y", QueueOrdering::kStrictPriority);
  std::optional<InferenceOutcome> got_x, got_y, got_z;
  ASSERT_TRUE(x->link->Push(Carrier(Micros(50'000), &got_x, /*tier=*/0)).ok());
  ASSERT_NE(Queued(*x), nullptr);
  ASSERT_TRUE(y->link->Push(Carrier(Micros(5'000'000), &got_y, /*tier=*/1)).ok());
  EXPECT_NE(Queued(*y), nullptr);  // another tier: its own item
  ASSERT_TRUE(x->link->Push(Carrier(Micros(9'000'000), &got_z, /*tier=*/1)).ok());
  ASSERT_TRUE(Attached(*x));  // waits for y's, of its tier and not later
  // A more urgent one of the same tier does not wait for it.
  std::optional<InferenceOutcome> got_w;
  auto w = NewGateway("gw-w", QueueOrdering::kStrictPriority);
  ASSERT_TRUE(w->link->Push(Carrier(Micros(100'000), &got_w, /*tier=*/1)).ok());
  EXPECT_NE(Queued(*w), nullptr);
}

TEST_F(CollapseLinkTest, AForwardedFailureIsRetriedNotPassedOn) {
  std::optional<InferenceOutcome> got_a, got_b;
  ASSERT_TRUE(a_->link->Push(Carrier(Micros(100'000), &got_a)).ok());
  RequestPtr link = Queued(*a_);
  ASSERT_TRUE(b_->link->Push(Carrier(Micros(200'000), &got_b)).ok());
  ASSERT_TRUE(Attached(*b_));
  InferenceOutcome late;
  late.status = DeadlineExceeded("request waited in the queue past its dispatch deadline");
  link->Complete(std::move(late));
  ASSERT_TRUE(Done(got_a));
  EXPECT_EQ(got_a->status.code(), ErrorCode::kDeadlineExceeded);
  // b's request was not answered: it queued its own item.
  RequestPtr again = Queued(*b_);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(b_->link->stats().retried, 1u);
  {
    std::lock_guard lock(mu_);
    EXPECT_FALSE(got_b.has_value());
  }
  again->Complete(Answer("b's own"));
  ASSERT_TRUE(Done(got_b));
  EXPECT_EQ(got_b->output, "b's own");
}

TEST_F(CollapseLinkTest, AnItemAnotherGatewayWaitsForIsNotWithdrawn) {
  std::optional<InferenceOutcome> got_a, got_b, got_c;
  RequestPtr carrier_a = Carrier(Micros(100'000), &got_a);
  ASSERT_TRUE(a_->link->Push(carrier_a).ok());
  RequestPtr link = Queued(*a_);
  RequestPtr carrier_b = Carrier(Micros(200'000), &got_b);
  ASSERT_TRUE(b_->link->Push(carrier_b).ok());
  ASSERT_TRUE(Attached(*b_));
  carrier_a->Cancel();
  a_->link->Withdraw(carrier_a);
  ASSERT_TRUE(PollUntil([&] { return a_->link->stats().kept == 1; }));
  EXPECT_EQ(a_->queue.withdrawn(), 0u);
  link->Complete(Answer("still wanted"));
  ASSERT_TRUE(Done(got_b));
  EXPECT_EQ(got_b->output, "still wanted");

  // With nobody waiting elsewhere, a withdrawn carrier leaves the queue.
  RequestPtr carrier_c = Carrier(Micros(100'000), &got_c);
  ASSERT_TRUE(a_->link->Push(carrier_c).ok());
  ASSERT_NE(Queued(*a_, 2), nullptr);
  carrier_c->Cancel();
  a_->link->Withdraw(carrier_c);
  EXPECT_TRUE(PollUntil([&] { return a_->queue.withdrawn() == 1; }));
}

TEST_F(CollapseLinkTest, AWaiterThatLeavesIsAnswered499AndForgotten) {
  std::optional<InferenceOutcome> got_a, got_b;
  ASSERT_TRUE(a_->link->Push(Carrier(Micros(100'000), &got_a)).ok());
  RequestPtr link = Queued(*a_);
  RequestPtr carrier_b = Carrier(Micros(200'000), &got_b);
  ASSERT_TRUE(b_->link->Push(carrier_b).ok());
  ASSERT_TRUE(Attached(*b_));
  carrier_b->Cancel();
  b_->link->Withdraw(carrier_b);
  ASSERT_TRUE(Done(got_b));
  EXPECT_EQ(got_b->status.code(), ErrorCode::kCancelled);
  ASSERT_TRUE(PollUntil([&] {
    ReplyResult n = connection_->Call({"LLEN", KeySpace("t").CollapseWaiters("k")});
    return n.ok() && n->AsInt() == 0;
  }));
  link->Complete(Answer("for a only"));
  ASSERT_TRUE(Done(got_a));
  EXPECT_EQ(a_->link->stats().forwarded, 0u);
}

}  // namespace
}  // namespace sluice::redis
