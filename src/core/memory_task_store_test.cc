#include "core/memory_task_store.h"

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

TaskAnswer Ok(const std::string& output) {
  TaskAnswer a;
  a.output = output;
  a.tokens_used = 5;
  a.model_version = "m-v1";
  return a;
}

class MemoryTaskStoreTest : public ::testing::Test {
 protected:
  void Make(int64_t ttl_ms = 1'000, uint64_t max_bytes = 1 << 20, size_t max_pending = 100) {
    MemoryTaskStore::Options o;
    o.result_ttl_ms = ttl_ms;
    o.max_bytes = max_bytes;
    o.max_pending = max_pending;
    o.executor = &ex_;
    store_ = std::move(MemoryTaskStore::Create(o)).value();
  }
  testing::FakeExecutor ex_;
  std::unique_ptr<MemoryTaskStore> store_;
};

TEST_F(MemoryTaskStoreTest, ATaskIsPendingThenDoneAndOnlyItsOwnerSeesIt) {
  Make();
  ASSERT_TRUE(store_->Create("t1", "key-a").ok());
  std::optional<TaskView> pending = store_->Get("t1", "key-a");
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(pending->done);
  EXPECT_FALSE(store_->Get("t1", "key-b").has_value());  // another key: no such task
  EXPECT_FALSE(store_->Get("t2", "key-a").has_value());
  store_->Complete("t1", Ok("out"));
  std::optional<TaskView> done = store_->Get("t1", "key-a");
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->done);
  EXPECT_EQ(done->answer.output, "out");
  store_->Complete("t1", Ok("again"));  // once only
  EXPECT_EQ(store_->Get("t1", "key-a")->answer.output, "out");
  EXPECT_EQ(store_->stats().completed, 1u);
  EXPECT_EQ(store_->stats().pending, 0u);
}

TEST_F(MemoryTaskStoreTest, ACompletedTaskExpiresAfterItsTimeToLive) {
  Make(/*ttl_ms=*/1'000);
  ASSERT_TRUE(store_->Create("t1", "k").ok());
  ex_.Advance(milliseconds(5'000));  // pending tasks do not expire
  ASSERT_TRUE(store_->Get("t1", "k").has_value());
  store_->Complete("t1", Ok("out"));
  ex_.Advance(milliseconds(999));
  EXPECT_TRUE(store_->Get("t1", "k").has_value());
  ex_.Advance(milliseconds(1));
  EXPECT_FALSE(store_->Get("t1", "k").has_value());
  EXPECT_EQ(store_->stats().expired, 1u);
  EXPECT_EQ(store_->stats().stored, 0u);
  EXPECT_EQ(store_->stats().bytes, 0u);
}

TEST_F(MemoryTaskStoreTest, TheOldestCompletedTasksGoFirstToStayWithinTheBudget) {
  const uint64_t one =
      MemoryTaskStore::kTaskOverheadBytes + 2 + 1 + 100 + 4;  // id, owner, output, version
  Make(/*ttl_ms=*/60'000, /*max_bytes=*/3 * one);
  for (const char* id : {"t1", "t2", "t3", "t4"}) ASSERT_TRUE(store_->Create(id, "k").ok());
  for (const char* id : {"t2", "t1", "t3"}) store_->Complete(id, Ok(std::string(100, 'x')));
  EXPECT_EQ(store_->stats().bytes, 3 * one);
  EXPECT_EQ(store_->stats().evicted, 0u);
  store_->Complete("t4", Ok(std::string(100, 'x')));
  EXPECT_FALSE(store_->Get("t2", "k").has_value());  // the first completed
  EXPECT_TRUE(store_->Get("t1", "k").has_value());
  EXPECT_TRUE(store_->Get("t4", "k").has_value());
  EXPECT_EQ(store_->stats().evicted, 1u);
  EXPECT_EQ(store_->stats().bytes, 3 * one);
}

TEST_F(MemoryTaskStoreTest, PendingTasksAreBounded) {
  Make(1'000, 1 << 20, /*max_pending=*/2);
  ASSERT_TRUE(store_->Create("t1", "k").ok());
  ASSERT_TRUE(store_->Create("t2", "k").ok());
  Status full = store_->Create("t3", "k");
  EXPECT_EQ(full.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(full.message(), "too many asynchronous tasks are pending (2); retry later");
  store_->Complete("t1", Ok("out"));
  EXPECT_TRUE(store_->Create("t3", "k").ok());
}

TEST_F(MemoryTaskStoreTest, AwaitAnswersAtCompletionOrWhenTheWaitEnds) {
  Make();
  ASSERT_TRUE(store_->Create("t1", "k").ok());
  ASSERT_TRUE(store_->Create("t2", "k").ok());
  std::optional<TaskView> got1, got2, other;
  int calls = 0;
  store_->Await("t1", "k", ex_.Now() + milliseconds(500), [&](std::optional<TaskView> v) {
    ++calls;
    got1 = std::move(v);
  });
  store_->Await("t2", "k", ex_.Now() + milliseconds(500), [&](std::optional<TaskView> v) {
    ++calls;
    got2 = std::move(v);
  });
  // Another key's wait ends at once: no such task.
  bool answered = false;
  store_->Await("t1", "other", ex_.Now() + milliseconds(500), [&](std::optional<TaskView> v) {
    answered = true;
    other = std::move(v);
  });
  EXPECT_TRUE(answered);
  EXPECT_FALSE(other.has_value());
  EXPECT_EQ(calls, 0);
  ex_.Advance(milliseconds(100));
  store_->Complete("t1", Ok("out"));
  ASSERT_TRUE(got1.has_value());
  EXPECT_TRUE(got1->done);
  EXPECT_EQ(got1->answer.output, "out");
  EXPECT_EQ(calls, 1);
  ex_.Advance(milliseconds(400));
  ASSERT_TRUE(got2.has_value());
  EXPECT_FALSE(got2->done);  // the wait ended first
  EXPECT_EQ(calls, 2);
  store_->Complete("t2", Ok("late"));
  EXPECT_EQ(calls, 2);  // each waiter answered once
  EXPECT_EQ(ex_.pending_timers(), 0u);
}

TEST_F(MemoryTaskStoreTest, AnIdempotencyKeyFindsItsTaskUntilTheTaskGoes) {
  Make(/*ttl_ms=*/1'000);
  using Kind = TaskStore::Reservation::Kind;
  Result<TaskStore::Reservation> first = store_->Reserve("k", "idem-1", "digest-a", "t1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->kind, Kind::kNew);
  // Its task exists at once: a repeat arriving now can wait for it.
  ASSERT_TRUE(store_->Get("t1", "k").has_value());
  EXPECT_EQ(store_->stats().pending, 1u);
  TaskStore::Reservation same = store_->Reserve("k", "idem-1", "digest-a", "t2").value();
  EXPECT_EQ(same.kind, Kind::kExisting);
  EXPECT_EQ(same.task_id, "t1");
  EXPECT_EQ(store_->Reserve("k", "idem-1", "digest-b", "t3")->kind, Kind::kConflict);
  // Another key's Idempotency-Key of the same name is its own.
  EXPECT_EQ(store_->Reserve("other", "idem-1", "digest-b", "t4")->kind, Kind::kNew);
  store_->Complete("t1", Ok("out"));
  ex_.Advance(milliseconds(1'000));
  EXPECT_FALSE(store_->Get("t1", "k").has_value());
  // Gone with its task: the key may be used again.
  EXPECT_EQ(store_->Reserve("k", "idem-1", "digest-b", "t5")->kind, Kind::kNew);
}

TEST_F(MemoryTaskStoreTest, AReservationCountsAgainstThePendingBound) {
  Make(1'000, 1 << 20, /*max_pending=*/1);
  ASSERT_TRUE(store_->Create("t1", "k").ok());
  Result<TaskStore::Reservation> full = store_->Reserve("k", "idem", "d", "t2");
  EXPECT_EQ(full.status().code(), ErrorCode::kUnavailable);
  store_->Complete("t1", Ok("out"));
  EXPECT_EQ(store_->Reserve("k", "idem", "d", "t2")->kind, TaskStore::Reservation::Kind::kNew);
}

TEST_F(MemoryTaskStoreTest, ADiscardedTaskAndItsKeyAreForgotten) {
  Make();
  using Kind = TaskStore::Reservation::Kind;
  EXPECT_EQ(store_->Reserve("k", "idem", "d", "t1")->kind, Kind::kNew);
  bool answered = false;
  store_->Await("t1", "k", ex_.Now() + milliseconds(100), [&](std::optional<TaskView> v) {
    answered = true;
    EXPECT_FALSE(v.has_value());
  });
  store_->Discard("t1");  // its request was refused
  EXPECT_TRUE(answered);
  EXPECT_FALSE(store_->Get("t1", "k").has_value());
  EXPECT_EQ(store_->stats().pending, 0u);
  EXPECT_EQ(store_->stats().created, 0u);  // it never ran
  EXPECT_EQ(ex_.pending_timers(), 0u);
  EXPECT_EQ(store_->Reserve("k", "idem", "d", "t2")->kind, Kind::kNew);
  store_->Complete("t2", Ok("done"));
  store_->Discard("t2");  // an answered task goes too
  EXPECT_EQ(store_->stats().stored, 0u);
  EXPECT_EQ(store_->stats().bytes, 0u);
  EXPECT_EQ(store_->Reserve("k", "idem", "d", "t3")->kind, Kind::kNew);
}

TEST_F(MemoryTaskStoreTest, LongPollsPerTaskAreBounded) {
  Make();
  ASSERT_TRUE(store_->Create("t1", "k").ok());
  const size_t polls = MemoryTaskStore::kMaxWaitersPerTask + 3;
  std::vector<std::optional<TaskView>> got(polls);
  std::vector<bool> answered_in_call(polls, false);
  for (size_t i = 0; i < polls; ++i) {
    store_->Await("t1", "k", ex_.Now() + milliseconds(500),
                  [&got, i](std::optional<TaskView> v) { got[i] = std::move(v); });
    answered_in_call[i] = got[i].has_value();
  }
  // The ones beyond the bound are answered at once, as the task is: pending.
  for (size_t i = 0; i < polls; ++i) {
    EXPECT_EQ(answered_in_call[i], i >= MemoryTaskStore::kMaxWaitersPerTask) << i;
    if (answered_in_call[i]) {
      EXPECT_FALSE(got[i]->done) << i;
    }
  }
  store_->Complete("t1", Ok("out"));
  for (size_t i = 0; i < MemoryTaskStore::kMaxWaitersPerTask; ++i) {
    ASSERT_TRUE(got[i].has_value()) << i;
    EXPECT_TRUE(got[i]->done) << i;
  }
}

TEST(MemoryTaskStoreCreateTest, ValidatesItsOptions) {
  testing::FakeExecutor ex;
  MemoryTaskStore::Options o;
  o.executor = &ex;
  o.result_ttl_ms = 0;
  EXPECT_EQ(MemoryTaskStore::Create(o).status().message(),
            "result_ttl_ms: must be between 1 and 2592000000 (30 days), got 0");
  o.result_ttl_ms = 1;
  o.executor = nullptr;
  EXPECT_EQ(MemoryTaskStore::Create(o).status().message(), "executor: required");
}

}  // namespace
}  // namespace sluice
