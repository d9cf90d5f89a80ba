// The Redis queue's second half against a real server: complete (answers
// published per gateway, token charges settled), lease renewal, the reaper
// (retries, dead letters) and the shared dead-letter lists.
#include <algorithm>
#include <map>
#include <optional>

#include "redis/dead_letters.h"
#include "redis/queue_test_fixture.h"

namespace sluice::redis {
namespace {

using namespace queue_testing;  // NOLINT(google-build-using-namespace): test helpers
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

// The newest `limit` dead letters of `shared`, read synchronously.
Result<DeadLetterPage> ReadNewest(const RedisDeadLetters& shared, size_t limit) {
  std::optional<Result<DeadLetterPage>> page;
  Latch read;
  shared.ReadNewest(limit, [&](Result<DeadLetterPage> p) {
    page = std::move(p);
    read.Signal();
  });
  if (!read.WaitFor(1, milliseconds(5'000))) return Unavailable("no dead-letter page in 5 s");
  return std::move(*page);
}

TEST_F(RedisQueueTest, CompletePublishesOneMessagePerGatewayPerBatch) {
  std::mutex mu;
  std::map<std::string, std::vector<WireResult>> received;
  Latch results;
  auto on = [&](const std::string& gw) {
    return [&, gw](WireResult&& r) {
      {
        std::lock_guard lock(mu);
        received[gw].push_back(std::move(r));
      }
      results.Signal();
    };
  };
  auto gw_a = NewListener("gw-a", on("gw-a"));
  auto gw_b = NewListener("gw-b", on("gw-b"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(Enqueue(Request("a" + std::to_string(i), 0, 2'000, "gw-a")).status.ok());
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(Enqueue(Request("b" + std::to_string(i), 2, 2'000, "gw-b")).status.ok());
  ASSERT_TRUE(Enqueue(Request("orphan", 1, 2'000, "gw-gone")).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 16);
  ASSERT_EQ(batch.requests.size(), 6u);
  std::vector<WireResult> answers;
  for (const WireRequest& r : batch.requests) answers.push_back(Answer(r, "out-" + r.id));
  Result<RedisBatchClaimer::CompleteResult> c = claimer_->Complete(answers);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 6u);
  EXPECT_EQ(c->messages, 3u);  // gw-a, gw-b, gw-gone
  EXPECT_EQ(c->dropped, 1u);   // nobody listens on gw-gone
  EXPECT_EQ(claimer_->stats().dropped_results, 1u);
  ASSERT_TRUE(results.WaitFor(5, milliseconds(5'000)));
  std::lock_guard lock(mu);
  ASSERT_EQ(received["gw-a"].size(), 3u);
  ASSERT_EQ(received["gw-b"].size(), 2u);
  EXPECT_EQ(gw_a->subscriber().stats().messages, 1u);  // one message per batch
  EXPECT_EQ(gw_b->subscriber().stats().messages, 1u);
  for (const WireResult& r : received["gw-a"]) {
    EXPECT_EQ(r.output, "out-" + r.id);
    EXPECT_EQ(r.id[0], 'a');
  }
  // Done means gone: the payloads and meta records are deleted.
  ReplyResult left = connection_->Call({"HLEN", KeySpace().Payloads(kModel)});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->integer, 0);
}

// A call some of whose results are stale is published from the live ones,
// cut out of the worker's messages by their byte lengths: outputs with
// escapes and multi-byte characters arrive whole, the stale one not again.
TEST_F(RedisQueueTest, OnlyTheLiveResultsOfACallArePublishedWhole) {
  std::mutex mu;
  std::vector<WireResult> received;
  Latch results;
  auto listener = NewListener("gw-a", [&](WireResult&& r) {
    {
      std::lock_guard lock(mu);
      received.push_back(std::move(r));
    }
    results.Signal();
  });
  for (const char* id : {"x1", "x2", "x3", "x4"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"x1", "x2", "x3", "x4"}));
  Result<RedisBatchClaimer::CompleteResult> c =
      claimer_->Complete({Answer(batch.requests[1], "first")});
  ASSERT_TRUE(c.ok() && c->answered == 1u);
  const std::vector<std::string> outputs = {"caf\xc3\xa9 \"quoted\", back\\slash", "again", "",
                                            std::string(300, 'z') + "\n,]"};
  std::vector<WireResult> answers;
  for (size_t i = 0; i < batch.requests.size(); ++i) {
    answers.push_back(Answer(batch.requests[i], outputs[i]));
  }
  c = claimer_->Complete(answers);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 3u);
  EXPECT_EQ(c->stale, 1u);
  EXPECT_EQ(c->stale_positions, std::vector<size_t>{1});
  EXPECT_EQ(c->messages, 1u);
  ASSERT_TRUE(results.WaitFor(4, milliseconds(5'000)));
  std::lock_guard lock(mu);
  std::map<std::string, std::string> got;
  for (const WireResult& r : received) {
    EXPECT_TRUE(got.emplace(r.id, r.output).second) << r.id << " answered twice";
  }
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {"x1", outputs[0]}, {"x2", "first"}, {"x3", outputs[2]}, {"x4", outputs[3]}}));
}

TEST_F(RedisQueueTest, ReapedRequestIsAnsweredExactlyOnce) {
  std::mutex mu;
  std::map<std::string, int> answers;
  Latch results;
  auto listener = NewListener("gw-a", [&](WireResult&& r) {
    {
      std::lock_guard lock(mu);
      ++answers[r.id + ":" + r.output];
    }
    results.Signal();
  });
  auto worker_a = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  auto worker_b = claimer_.get();
  ASSERT_TRUE(Enqueue(Request("r1", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch a = ClaimNow(*worker_a, 8);
  ASSERT_EQ(Ids(a.requests), std::vector<std::string>{"r1"});

  // Worker A "hangs"; its lease runs out and the reaper re-queues r1.
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  RedisBatchClaimer::Batch b = ClaimNow(*worker_b, 8);
  ASSERT_EQ(Ids(b.requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(b.requests[0].attempts, 1u);

  // A wakes up and completes first: its answer wins; B's is stale.
  Result<RedisBatchClaimer::CompleteResult> from_a =
      worker_a->Complete({Answer(a.requests[0], "A")});
  ASSERT_TRUE(from_a.ok());
  EXPECT_EQ(from_a->answered, 1u);
  Result<RedisBatchClaimer::CompleteResult> from_b =
      worker_b->Complete({Answer(b.requests[0], "B")});
  ASSERT_TRUE(from_b.ok());
  EXPECT_EQ(from_b->answered, 0u);
  EXPECT_EQ(from_b->stale, 1u);

  // Second case: A completes while r2 waits re-queued; the queued copy is
  // removed with the answer, so nobody claims it again.
  ASSERT_TRUE(Enqueue(Request("r2", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch a2 = ClaimNow(*worker_a, 8);
  ASSERT_EQ(Ids(a2.requests), std::vector<std::string>{"r2"});
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  ASSERT_TRUE(worker_a->Complete({Answer(a2.requests[0], "A")}).ok());
  EXPECT_TRUE(ClaimNow(*worker_b, 8).empty());

  // A sentinel answered after both: once it arrives, everything before it
  // has been delivered (one connection, in order).
  ASSERT_TRUE(Enqueue(Request("sentinel", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch s = ClaimNow(*worker_b, 8);
  ASSERT_TRUE(worker_b->Complete({Answer(s.requests[0], "S")}).ok());
  ASSERT_TRUE(results.WaitFor(3, milliseconds(5'000)));
  std::lock_guard lock(mu);
  EXPECT_EQ(answers, (std::map<std::string, int>{{"r1:A", 1}, {"r2:A", 1}, {"sentinel:S", 1}}));
}

TEST_F(RedisQueueTest, OneLeasePerBatchIsRenewedUntilItsLastAnswerReleasesIt) {
  ASSERT_TRUE(Enqueue(Request("held", 0, 10'000)).status.ok());
  ASSERT_TRUE(Enqueue(Request("done", 0, 10'001)).status.ok());
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"held", "done"}));
  ASSERT_FALSE(batch.lease.id.empty());
  for (const WireRequest& r : batch.requests) EXPECT_EQ(r.lease, batch.lease.id);
  // One answer of two: the batch's lease is still held.
  Result<RedisBatchClaimer::CompleteResult> completed =
      claimer_->Complete({Answer(batch.requests[1], "x")});
  ASSERT_TRUE(completed.ok() && completed->answered == 1u);
  // A second batch, answered whole: its lease is released with the answer.
  ASSERT_TRUE(Enqueue(Request("other", 0, 10'002)).status.ok());
  RedisBatchClaimer::Batch other = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(other.requests), std::vector<std::string>{"other"});
  ASSERT_NE(other.lease.id, batch.lease.id);
  ASSERT_TRUE(claimer_->Complete({Answer(other.requests[0], "y")}).ok());

  const std::string leases = KeySpace().Leases(kModel);
  auto lease_of = [&](const std::string& id) {
    ReplyResult r = connection_->Call({"ZSCORE", leases, id});
    return r.ok() && !r->is_nil() ? std::stoll(r->str) : int64_t{-1};
  };
  const int64_t before = lease_of(batch.lease.id);
  ASSERT_GT(before, 0);
  EXPECT_EQ(lease_of(other.lease.id), -1);
  Latch renewed;
  Result<int64_t> extended = Internal("no reply");
  claimer_->RenewAsync({batch.lease, other.lease, {"never-claimed", 0}}, [&](Result<int64_t> n) {
    extended = std::move(n);
    renewed.Signal();
  });
  ASSERT_TRUE(renewed.WaitFor(1, milliseconds(5'000)));
  ASSERT_TRUE(extended.ok()) << extended.status().ToString();
  EXPECT_EQ(*extended, 1);
  EXPECT_GT(lease_of(batch.lease.id), before);  // now + lease, from a later now
  EXPECT_EQ(lease_of(other.lease.id), -1);      // released: not leased again
  EXPECT_EQ(lease_of("never-claimed"), -1);

  // The last answer releases the lease and its bookkeeping.
  completed = claimer_->Complete({Answer(batch.requests[0], "z")});
  ASSERT_TRUE(completed.ok() && completed->answered == 1u);
  EXPECT_EQ(lease_of(batch.lease.id), -1);
  for (const std::string& key : {leases, KeySpace().Batches(kModel), KeySpace().Payloads(kModel)}) {
    ReplyResult left = connection_->Call({"EXISTS", key});
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(left->integer, 0) << key;
  }
}

TEST_F(RedisQueueTest, ACompleteSentAgainCountsOnceTowardItsLease) {
  for (const char* id : {"s1", "s2", "s3"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"s1", "s2", "s3"}));
  auto leased = [&] {
    return !connection_->Call({"ZSCORE", KeySpace().Leases(kModel), batch.lease.id})->is_nil();
  };
  auto answered = [&](std::vector<WireResult> results) {
    Result<RedisBatchClaimer::CompleteResult> c = claimer_->Complete(results);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->answered : size_t{99};
  };
  const std::vector<WireResult> first = {Answer(batch.requests[0], "a")};
  EXPECT_EQ(answered(first), 1u);
  // The same call again (as after a lost reply): stale, and it does not
  // count toward the lease, which still waits for s2 and s3.
  EXPECT_EQ(answered(first), 0u);
  EXPECT_EQ(answered({Answer(batch.requests[1], "b")}), 1u);
  EXPECT_TRUE(leased());
  EXPECT_EQ(answered({Answer(batch.requests[2], "c")}), 1u);
  EXPECT_FALSE(leased());
}

// An id repeated in one call is answered once, by its first result; the
// repeat is stale. The script takes each id once (scripts.h): here the
// repeat makes the call name as many results as the lease holds, which
// must not release the lease while s2 is unanswered.
TEST_F(RedisQueueTest, AnIdRepeatedInOneCallIsAnsweredOnceAndTheRepeatIsStale) {
  for (const char* id : {"s1", "s2"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"s1", "s2"}));
  auto leased = [&] {
    return !connection_->Call({"ZSCORE", KeySpace().Leases(kModel), batch.lease.id})->is_nil();
  };
  Result<RedisBatchClaimer::CompleteResult> c =
      claimer_->Complete({Answer(batch.requests[0], "a"), Answer(batch.requests[0], "again")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 1u);
  EXPECT_EQ(c->stale, 1u);
  EXPECT_EQ(c->stale_positions, std::vector<size_t>{1});
  EXPECT_TRUE(leased());
  EXPECT_EQ(connection_->Call({"HEXISTS", KeySpace().Payloads(kModel), "s2"})->AsInt(), 1);
  c = claimer_->Complete({Answer(batch.requests[1], "b")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 1u);
  EXPECT_FALSE(leased());
  EXPECT_EQ(claimer_->stats().stale_results, 1u);
}

// The complete step answers a whole fresh batch without reading its entries
// (scripts.h). A part answered already must still be found out: here the
// call sent again names as many results as the lease has left.
TEST_F(RedisQueueTest, APartAnsweredAlreadyIsStaleWhenItIsAllTheLeaseHasLeft) {
  for (const char* id : {"u1", "u2"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"u1", "u2"}));
  const std::vector<WireResult> part = {Answer(batch.requests[0], "a")};
  ASSERT_TRUE(part[0].first_attempt);
  Result<RedisBatchClaimer::CompleteResult> c = claimer_->Complete(part);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 1u);
  c = claimer_->Complete(part);  // one result, one left unanswered in the lease
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 0u);
  EXPECT_EQ(c->stale, 1u);
  EXPECT_EQ(c->stale_positions, std::vector<size_t>{0});
  // u2's answer is still awaited, and releases the lease.
  c = claimer_->Complete({Answer(batch.requests[1], "b")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->answered, 1u);
  EXPECT_TRUE(connection_->Call({"ZSCORE", KeySpace().Leases(kModel), batch.lease.id})->is_nil());
  ReplyResult left = connection_->Call({"EXISTS", KeySpace().Batches(kModel)});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->integer, 0);
  // A whole fresh batch sent twice: answered once.
  ASSERT_TRUE(Enqueue(Request("w1", 0, 10'000)).status.ok());
  RedisBatchClaimer::Batch whole = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(whole.requests), std::vector<std::string>{"w1"});
  const std::vector<WireResult> all = {Answer(whole.requests[0], "w")};
  c = claimer_->Complete(all);
  ASSERT_TRUE(c.ok() && c->answered == 1u);
  c = claimer_->Complete(all);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->answered, 0u);
  EXPECT_EQ(c->stale, 1u);
}

TEST_F(RedisQueueTest, AReapedBatchRequeuesOnlyItsUnansweredRequests) {
  auto lost_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  for (const char* id : {"p1", "p2", "p3"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  RedisBatchClaimer::Batch batch = ClaimNow(*lost_worker, 8);
  ASSERT_EQ(Ids(batch.requests), (std::vector<std::string>{"p1", "p2", "p3"}));
  // One answer gets through before the worker is lost.
  Result<RedisBatchClaimer::CompleteResult> done =
      lost_worker->Complete({Answer(batch.requests[1], "x")});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->answered, 1u);

  RedisReaper::Outcome reaped = ReapUntilSomething();
  EXPECT_EQ(reaped.scanned, 1u);  // one lease for the whole batch
  EXPECT_EQ(reaped.requeued, 2u);
  EXPECT_EQ(reaped.dead_lettered, 0u);
  RedisBatchClaimer::Batch again = ClaimNow(*claimer_, 8);
  EXPECT_EQ(Ids(again.requests), (std::vector<std::string>{"p1", "p3"}));
  for (const WireRequest& r : again.requests) EXPECT_EQ(r.attempts, 1u) << r.id;
  // The reaped lease left nothing behind; the new one is all there is.
  ReplyResult fields = connection_->Call({"HKEYS", KeySpace().Batches(kModel)});
  ASSERT_TRUE(fields.ok());
  std::vector<std::string> names;
  for (const RedisReply& f : fields->elements) names.push_back(f.str);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{again.lease.id, again.lease.id + "|ids"}));
}

TEST_F(RedisQueueTest, TheReaperTakesWholeLeasesUntilMaxPerCallRequests) {
  RedisReaper::Options o;
  o.connection = connection_.get();
  o.tier_count = 3;
  o.max_per_call = 2;
  auto reaper = std::move(RedisReaper::Create(o)).value();
  auto lost_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  for (const char* id : {"w1", "w2", "w3", "w4", "w5", "w6"}) {
    ASSERT_TRUE(Enqueue(Request(id, 0, 10'000)).status.ok());
  }
  ASSERT_EQ(ClaimNow(*lost_worker, 3).requests.size(), 3u);
  ASSERT_EQ(ClaimNow(*lost_worker, 3).requests.size(), 3u);
  // A lease as leased before leases were per batch: the member is the id.
  ASSERT_TRUE(Enqueue(Request("solo", 0, 10'000)).status.ok());
  ASSERT_EQ(ClaimNow(*claimer_, 1).requests.size(), 1u);
  ASSERT_TRUE(
      connection_->Call({"DEL", KeySpace().Leases(kModel), KeySpace().Batches(kModel)}).ok());
  ASSERT_TRUE(connection_->Call({"ZADD", KeySpace().Leases(kModel), "1", "solo"}).ok());
  // The two batches' leases went with the DEL: put them back, expired, so
  // that the order of the three is known.
  const std::pair<const char*, const char*> batches[] = {{"1/w1", "w1|w2|w3"},
                                                         {"2/w4", "w4|w5|w6"}};
  for (const auto& [lease, ids] : batches) {
    ASSERT_TRUE(connection_->Call({"ZADD", KeySpace().Leases(kModel), "2", lease}).ok());
    ASSERT_TRUE(connection_
                    ->Call({"HSET", KeySpace().Batches(kModel), lease, "3",
                            std::string(lease) + "|ids", ids})
                    .ok());
  }
  // Oldest first ("solo", then "1/w1": 1 + 3 requests >= 2), then the rest.
  Result<RedisReaper::Outcome> a = reaper->ReapOnce(kModel);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->scanned, 2u);
  EXPECT_EQ(a->requeued, 4u);
  Result<RedisReaper::Outcome> b = reaper->ReapOnce(kModel);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->scanned, 1u);
  EXPECT_EQ(b->requeued, 3u);
  RedisBatchClaimer::Batch all = ClaimNow(*claimer_, 16);
  std::vector<std::string> ids = Ids(all.requests);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"solo", "w1", "w2", "w3", "w4", "w5", "w6"}));
}

TEST_F(RedisQueueTest, RequeuedRequestPastItsDispatchDeadlineIsClaimedNotExpired) {
  auto lost_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);  // 1 ms lease
  ASSERT_TRUE(Enqueue(Request("r1", 0, 10'000)).status.ok());
  ASSERT_EQ(Ids(ClaimNow(*lost_worker, 8).requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(ReapUntilSomething().requeued, 1u);
  // Its dispatch deadline passes while it is re-queued.
  const std::string queue = KeySpace().Queue(kModel, 0);
  ReplyResult members = connection_->Call({"ZRANGE", queue, "0", "-1"});
  ASSERT_TRUE(members.ok() && members->elements.size() == 1u);
  ASSERT_EQ(connection_->Call({"ZREM", queue, members->elements[0].str})->AsInt(), 1);
  ASSERT_EQ(connection_->Call({"ZADD", queue, "1", QueueMember(1, "r1")})->AsInt(), 1);
  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  EXPECT_TRUE(batch.expired.empty());
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"r1"});
  EXPECT_EQ(batch.requests[0].attempts, 1u);
}

// The scripts rebuild a request's member from its entry's deadline text
// (withdraw, reap, a late answer's ZREM) exactly as the gateway built it,
// also past 2^53 µs and past 16 digits, where a double would round.
TEST_F(RedisQueueTest, FarDeadlinesKeepTheirMemberWhenWithdrawn) {
  const std::pair<const char*, int64_t> far[] = {{"f1", 9'007'199'254'740'993},
                                                 {"f2", 20'000'000'000'000'000}};
  for (const auto& [id, deadline] : far) {
    WireRequest r = Request(id, 0, 10'000);
    r.dispatch_deadline_us = deadline;
    r.total_deadline_us = deadline;
    ASSERT_TRUE(Enqueue(r).status.ok());
  }
  Latch done;
  std::optional<Result<std::vector<std::string>>> removed;
  queue_->WithdrawAsync(kModel, {"f1", "f2"}, [&](Result<std::vector<std::string>> r) {
    removed = std::move(r);
    done.Signal();
  });
  ASSERT_TRUE(done.WaitFor(1, std::chrono::milliseconds(5'000)));
  ASSERT_TRUE(removed->ok()) << removed->status().ToString();
  EXPECT_EQ(removed->value(), (std::vector<std::string>{"f1", "f2"}));
  EXPECT_EQ(connection_->Call({"ZCARD", KeySpace().Queue(kModel, 0)})->AsInt(), 0);
}

TEST_F(RedisQueueTest, RetryBudgetThenDeadLetterAndGatewayIsTold) {
  Latch told;
  std::optional<WireResult> failure;
  auto listener = NewListener("gw-a", [&](WireResult&& r) {
    failure = std::move(r);
    told.Signal();
  });
  auto dying_worker = NewClaimer(QueueOrdering::kEarliestDeadlineFirst, 1'000);
  ASSERT_TRUE(Enqueue(Request("doomed", 1, 60'000)).status.ok());
  // The first claim and two retries all lose their lease.
  for (uint32_t attempt = 0; attempt <= 2; ++attempt) {
    RedisBatchClaimer::Batch batch = ClaimNow(*dying_worker, 4);
    ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"doomed"}) << "attempt " << attempt;
    EXPECT_EQ(batch.requests[0].attempts, attempt);
    RedisReaper::Outcome reaped = ReapUntilSomething();
    if (attempt < 2) {
      EXPECT_EQ(reaped.requeued, 1u);
    } else {
      EXPECT_EQ(reaped.dead_lettered, 1u);
      EXPECT_EQ(reaped.requeued, 0u);
    }
  }
  EXPECT_TRUE(ClaimNow(*dying_worker, 4).empty());
  ASSERT_TRUE(told.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(failure->id, "doomed");
  EXPECT_EQ(failure->code, ErrorCode::kBackendError);  // the client gets 502
  EXPECT_EQ(failure->reason, "worker_lost");
  ReplyResult dead = connection_->Call({"LRANGE", KeySpace().Dead(kModel), "0", "-1"});
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->elements.size(), 1u);
  EXPECT_NE(dead->elements[0].str.find("\"id\":\"doomed\""), std::string::npos);
  EXPECT_NE(dead->elements[0].str.find("\"attempts\":3"), std::string::npos);
  EXPECT_NE(dead->elements[0].str.find("\"in\":\"input of doomed\""), std::string::npos);
  // Any gateway serves it, decoded like a worker's dead letter.
  auto shared =
      std::move(RedisDeadLetters::Create({connection_.get(), KeySpace(), {kModel}, 10})).value();
  Result<DeadLetterPage> page = ReadNewest(*shared, 10);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->entries.size(), 1u);
  const DeadLetter& d = page->entries[0];
  EXPECT_EQ(d.request_id, "doomed");
  EXPECT_EQ(d.model, kModel);
  EXPECT_EQ(d.key_id, "key-1");
  EXPECT_EQ(d.tier, "paid");
  EXPECT_EQ(d.input, "input of doomed");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.last_error,
            "lease expired: the worker holding it stopped renewing (lease_expired, gateway gw-a)");
  EXPECT_EQ(page->total, 1u);
  // A late completion by the dead worker changes nothing.
  Result<RedisBatchClaimer::CompleteResult> late =
      dying_worker->Complete({Answer(Request("doomed", 1, 0), "late")});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->stale, 1u);
}

// Workers' dead letters go to their model's list; a gateway reads every
// model's, newest first, with the counts; the cap keeps the newest.
TEST_F(RedisQueueTest, SharedDeadLettersAreCappedAndReadNewestFirstAcrossModels) {
  auto shared =
      std::move(RedisDeadLetters::Create({connection_.get(), KeySpace(), {kModel, "other"}, 3}))
          .value();
  const std::chrono::system_clock::time_point t0(  // whole µs, as stored
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch()));
  for (int i = 0; i < 5; ++i) {
    DeadLetter d;
    d.request_id = "r" + std::to_string(i);
    d.model = i % 2 == 0 ? kModel : "other";
    d.key_id = "key-1";
    d.tier = "free";
    d.input = "ввод " + std::to_string(i);
    d.attempts = 3;
    d.last_error = "backend said no";
    d.last_backend = "http:m/0";
    d.at = t0 + std::chrono::milliseconds(i);
    shared->Push(d);
  }
  Result<DeadLetterPage> page = ReadNewest(*shared, 4);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::vector<std::string> ids;
  for (const DeadLetter& d : page->entries) ids.push_back(d.request_id);
  // llama holds r0, r2, r4 (cap 3), other r1, r3: the newest four overall.
  EXPECT_EQ(ids, (std::vector<std::string>{"r4", "r3", "r2", "r1"}));
  EXPECT_EQ(page->size, 5u);
  EXPECT_EQ(page->total, 5u);
  EXPECT_EQ(page->dropped, 0u);
  const DeadLetter& newest = page->entries[0];
  EXPECT_EQ(newest.input, "ввод 4");
  EXPECT_EQ(newest.last_error, "backend said no");
  EXPECT_EQ(newest.last_backend, "http:m/0");
  EXPECT_EQ(newest.attempts, 3);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(newest.at - t0).count(), 4'000);

  DeadLetter more = page->entries[0];
  more.request_id = "r5";
  shared->Push(more);  // llama's fourth: the oldest (r0) goes
  page = ReadNewest(*shared, 10);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->size, 5u);
  EXPECT_EQ(page->total, 6u);
  EXPECT_EQ(page->dropped, 1u);
  EXPECT_EQ(page->entries.back().request_id, "r1");
  EXPECT_EQ(shared->push_errors(), 0u);
}

// The complete step settles each answered request's token charge on its
// key's limit (what the single process does in Finish): tokens charged at
// enqueue (input + max_tokens) and not used come back, a failure uses none.
TEST_F(RedisQueueTest, CompleteGivesBackTheTokensNotUsed) {
  RedisQueueClient::EnqueueOptions limited;
  limited.rate_limit = RedisQueueClient::RateLimitCheck{"key-1", RateLimitPolicy{0, 100}, 60};
  auto request = [&](const std::string& id) {
    WireRequest r = Request(id, 1, 10'000);
    r.charged_tokens = 60;
    r.tokens_per_minute = 100;
    return r;
  };
  ASSERT_TRUE(Enqueue(request("a"), limited).status.ok());
  // 60 of 100 tokens per minute are taken: another 60 do not fit.
  EXPECT_EQ(Enqueue(request("b"), limited).status.code(), ErrorCode::kRateLimited);

  RedisBatchClaimer::Batch batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"a"});
  EXPECT_EQ(batch.requests[0].tokens_per_minute, 100);     // carried to the worker
  WireResult answer = Answer(batch.requests[0], "short");  // 3 tokens used
  answer.charged_key_id = "key-1";
  answer.charged_tokens = 60;
  answer.tokens_per_minute = 100;
  Result<RedisBatchClaimer::CompleteResult> done = claimer_->Complete({answer});
  ASSERT_TRUE(done.ok() && done->answered == 1u);
  // 57 came back: 60 more fit now (3 + 60 <= 100), and then nothing else.
  RedisQueueClient::EnqueueResult c = Enqueue(request("c"), limited);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.rate_limit->tokens.remaining, 37);

  // A failed request uses none: its whole charge comes back.
  batch = ClaimNow(*claimer_, 8);
  ASSERT_EQ(Ids(batch.requests), std::vector<std::string>{"c"});
  WireResult failed;
  failed.id = "c";
  failed.code = ErrorCode::kBackendError;
  failed.message = "backend failed";
  failed.charged_key_id = "key-1";
  failed.charged_tokens = 60;
  failed.tokens_per_minute = 100;
  ASSERT_TRUE(claimer_->Complete({failed}).ok());
  RedisQueueClient::EnqueueResult d = Enqueue(request("d"), limited);
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.rate_limit->tokens.remaining, 37);
  // A stale completion (answered already) settles nothing twice.
  ASSERT_TRUE(claimer_->Complete({failed}).ok());
  EXPECT_EQ(Enqueue(request("e"), limited).status.code(), ErrorCode::kRateLimited);
}

}  // namespace
}  // namespace sluice::redis
