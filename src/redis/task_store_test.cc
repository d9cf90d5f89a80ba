// RedisTaskStore against a real redis-server: two stores stand for two
// gateways sharing one Redis.
#include "redis/redis_task_store.h"

#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>

#include "common/asio_executor.h"
#include "common/crypto.h"
#include "redis/redis_test_fixture.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;

class RedisTaskStoreTest : public RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    stores_.clear();
    executor_.reset();
    work_.reset();
    thread_.join();
  }

  RedisTaskStore* NewStore(int64_t result_ttl_ms = 60'000, size_t max_pending = 100) {
    RedisTaskStore::Options o;
    o.connection = connection_.get();
    o.keys = KeySpace("t");
    o.result_ttl_ms = result_ttl_ms;
    o.pending_ttl_ms = 120'000;
    o.max_pending = max_pending;
    o.poll_interval_ms = 5;
    o.executor = executor_.get();
    auto s = RedisTaskStore::Create(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    stores_.push_back(std::move(s).value());
    return stores_.back().get();
  }
  static TaskAnswer Answer(std::string output) {
    TaskAnswer a;
    a.output = std::move(output);
    a.tokens_used = 7;
    a.latency_ms = 12;
    a.model_version = "v1";
    return a;
  }
  // Await() and wait (bounded) for its answer.
  static std::optional<std::optional<TaskView>> AwaitNow(RedisTaskStore* store,
                                                         const std::string& id,
                                                         const std::string& owner,
                                                         milliseconds wait) {
    Latch done;
    std::optional<std::optional<TaskView>> out;
    std::mutex mu;
    store->Await(id, owner, SystemClock()->Now() + wait, [&](std::optional<TaskView> v) {
      std::lock_guard lock(mu);
      out = std::move(v);
      done.Signal();
    });
    if (!done.WaitFor(1, wait + milliseconds(5'000))) return std::nullopt;
    std::lock_guard lock(mu);
    return out;
  }

  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      ioc_.get_executor()};
  std::unique_ptr<AsioExecutor> executor_ = std::make_unique<AsioExecutor>(ioc_);
  std::thread thread_;
  std::vector<std::unique_ptr<RedisTaskStore>> stores_;
};

TEST(StoredTaskTest, EncodesAndParsesPendingAndDoneTasks) {
  std::optional<StoredTask> pending = ParseStoredTask(EncodeStoredTask("key-a", nullptr));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->owner, "key-a");
  EXPECT_FALSE(pending->done);

  TaskAnswer failed;
  failed.http_status = 503;
  failed.error_code = "unavailable";
  failed.error_message = "queue full\n\"quoted\"";
  failed.error_reason = "queue_full";
  failed.collapsed = true;
  std::optional<StoredTask> done = ParseStoredTask(EncodeStoredTask("key-b", &failed));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->owner, "key-b");
  EXPECT_TRUE(done->done);
  EXPECT_EQ(done->answer.http_status, 503);
  EXPECT_EQ(done->answer.error_message, "queue full\n\"quoted\"");
  EXPECT_EQ(done->answer.error_reason, "queue_full");
  EXPECT_TRUE(done->answer.collapsed);
  EXPECT_FALSE(done->answer.cached);

  EXPECT_FALSE(ParseStoredTask(""));
  EXPECT_FALSE(ParseStoredTask("Xowner\n"));
  EXPECT_FALSE(ParseStoredTask("Downer\n{not json"));
  EXPECT_FALSE(ParseStoredTask("Downer\n{\"s\":42}"));  // no such status
}

TEST_F(RedisTaskStoreTest, ATaskCompletedAtOneGatewayIsReadAtAnother) {
  RedisTaskStore* a = NewStore();
  RedisTaskStore* b = NewStore();
  ASSERT_TRUE(a->Create("task-1", "owner").ok());
  std::optional<TaskView> pending = b->Get("task-1", "owner");
  ASSERT_TRUE(pending);
  EXPECT_FALSE(pending->done);
  EXPECT_FALSE(b->Get("task-1", "someone-else"));
  EXPECT_FALSE(b->Get("task-2", "owner"));

  a->Complete("task-1", Answer("hello"));
  // Complete() does not wait for its write; the next read on the same
  // connection comes after it.
  std::optional<TaskView> done = b->Get("task-1", "owner");
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->done);
  EXPECT_EQ(done->answer.output, "hello");
  EXPECT_EQ(done->answer.tokens_used, 7u);
  EXPECT_EQ(a->stats().created, 1u);
  EXPECT_EQ(a->stats().completed, 1u);
  EXPECT_EQ(a->stats().pending, 0u);
  EXPECT_EQ(b->stats().created, 0u);
  // Only the gateway that took a task completes it.
  b->Complete("task-1", Answer("other"));
  EXPECT_EQ(b->Get("task-1", "owner")->answer.output, "hello");
}

TEST_F(RedisTaskStoreTest, ALongPollAtAnotherGatewaySeesTheAnswer) {
  RedisTaskStore* a = NewStore();
  RedisTaskStore* b = NewStore();
  ASSERT_TRUE(a->Create("task-1", "owner").ok());
  Latch answered;
  std::optional<TaskView> seen;
  std::mutex mu;
  b->Await("task-1", "owner", SystemClock()->Now() + milliseconds(20'000),
           [&](std::optional<TaskView> v) {
             std::lock_guard lock(mu);
             seen = std::move(v);
             answered.Signal();
           });
  // b polls: it has not answered a pending task before its end.
  EXPECT_FALSE(answered.WaitFor(1, milliseconds(30)));
  a->Complete("task-1", Answer("late"));
  ASSERT_TRUE(answered.WaitFor(1, milliseconds(10'000)));
  std::lock_guard lock(mu);
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->done);
  EXPECT_EQ(seen->answer.output, "late");
}

TEST_F(RedisTaskStoreTest, ALongPollEndsPendingAtItsEndAndUnknownForAnotherOwner) {
  RedisTaskStore* a = NewStore();
  RedisTaskStore* b = NewStore();
  ASSERT_TRUE(a->Create("task-1", "owner").ok());
  for (RedisTaskStore* store : {a, b}) {
    auto v = AwaitNow(store, "task-1", "owner", milliseconds(40));
    ASSERT_TRUE(v) << "no answer";
    ASSERT_TRUE(*v);
    EXPECT_FALSE((*v)->done);
    auto other = AwaitNow(store, "task-1", "intruder", milliseconds(40));
    ASSERT_TRUE(other);
    EXPECT_FALSE(*other);
  }
}

TEST_F(RedisTaskStoreTest, AnIdempotencyKeyIsSharedAndADiscardFreesIt) {
  RedisTaskStore* a = NewStore();
  RedisTaskStore* b = NewStore();
  auto first = a->Reserve("owner", "order-17", "digest-1", "task-1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->kind, TaskStore::Reservation::Kind::kNew);
  auto same = b->Reserve("owner", "order-17", "digest-1", "task-2");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->kind, TaskStore::Reservation::Kind::kExisting);
  EXPECT_EQ(same->task_id, "task-1");
  auto conflict = b->Reserve("owner", "order-17", "digest-2", "task-3");
  ASSERT_TRUE(conflict.ok());
  EXPECT_EQ(conflict->kind, TaskStore::Reservation::Kind::kConflict);
  // Another owner's key of the same name is its own.
  auto other = b->Reserve("other-owner", "order-17", "digest-2", "task-4");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->kind, TaskStore::Reservation::Kind::kNew);
  EXPECT_EQ(b->stats().created, 1u);
  EXPECT_EQ(b->stats().pending, 1u);

  // The first request was refused: the key is free again, everywhere.
  a->Discard("task-1");
  EXPECT_EQ(a->stats().created, 0u);
  EXPECT_FALSE(b->Get("task-1", "owner"));
  auto retry = b->Reserve("owner", "order-17", "digest-2", "task-5");
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->kind, TaskStore::Reservation::Kind::kNew);
}

TEST_F(RedisTaskStoreTest, ACompletedTaskAndItsKeyExpireTogether) {
  RedisTaskStore* a = NewStore(/*result_ttl_ms=*/5'000);
  ASSERT_TRUE(a->Reserve("owner", "k", "d", "task-1").ok());
  a->Complete("task-1", Answer("soon gone"));
  ASSERT_TRUE(a->Get("task-1", "owner"));
  ReplyResult ttl = connection_->Call({"PTTL", KeySpace("t").Task("owner", "task-1")});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(*ttl->AsInt(), 0);
  EXPECT_LE(*ttl->AsInt(), 5'000);  // the result's, not the pending task's 120 s
  ReplyResult key_ttl =
      connection_->Call({"PTTL", KeySpace("t").IdempotencyKey("owner", ToHex(Sha256("k")))});
  ASSERT_TRUE(key_ttl.ok());
  EXPECT_GT(*key_ttl->AsInt(), 0);
  EXPECT_LE(*key_ttl->AsInt(), 5'000);
}

TEST_F(RedisTaskStoreTest, PendingTasksAreBoundedPerGateway) {
  RedisTaskStore* a = NewStore(60'000, /*max_pending=*/2);
  auto first = a->Reserve("o", "k1", "d1", "t1");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->kind, TaskStore::Reservation::Kind::kNew);
  ASSERT_TRUE(a->Create("t2", "o").ok());
  Status full = a->Create("t3", "o");
  EXPECT_EQ(full.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(full.message(), "too many asynchronous tasks are pending (2); retry later");
  // A repeat takes no room: it still finds its task; a new key does not.
  auto repeat = a->Reserve("o", "k1", "d1", "t9");
  ASSERT_TRUE(repeat.ok());
  EXPECT_EQ(repeat->kind, TaskStore::Reservation::Kind::kExisting);
  EXPECT_EQ(repeat->task_id, "t1");
  EXPECT_EQ(a->Reserve("o", "k2", "d1", "t9").status().code(), ErrorCode::kUnavailable);
  a->Complete("t1", Answer("x"));
  EXPECT_TRUE(a->Create("t3", "o").ok());
}

// CreateAsync() answers once the task is readable at every gateway, on the
// connection's thread; a task id taken already is refused.
TEST_F(RedisTaskStoreTest, CreateAsyncAnswersOnceTheTaskIsReadableElsewhere) {
  RedisTaskStore* a = NewStore();
  RedisTaskStore* b = NewStore();
  Latch done;
  std::mutex mu;
  std::vector<Status> statuses;
  std::optional<TaskView> seen;
  std::thread::id answered_on;
  a->CreateAsync("t1", "o", [&](Status s) {
    std::lock_guard lock(mu);
    statuses.push_back(std::move(s));
    answered_on = std::this_thread::get_id();
    done.Signal();
  });
  ASSERT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(statuses.size(), 1u);
    EXPECT_TRUE(statuses[0].ok()) << statuses[0].ToString();
    // Answered by the connection's thread: the caller did not wait for it.
    EXPECT_NE(answered_on, std::this_thread::get_id());
  }
  seen = b->Get("t1", "o");
  ASSERT_TRUE(seen);
  EXPECT_FALSE(seen->done);
  EXPECT_EQ(a->stats().pending, 1u);
  // The same id at the other gateway: refused, and it takes no room there.
  a->Complete("t1", Answer("x"));
  b->CreateAsync("t1", "o", [&](Status s) {
    std::lock_guard lock(mu);
    statuses.push_back(std::move(s));
    done.Signal();
  });
  ASSERT_TRUE(done.WaitFor(2, milliseconds(5'000)));
  std::lock_guard lock(mu);
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[1].code(), ErrorCode::kInternal);
  EXPECT_EQ(statuses[1].message(), "task 't1' exists");
  EXPECT_EQ(b->stats().pending, 0u);
}

TEST_F(RedisTaskStoreTest, AStoreWhoseRedisIsDownRefusesNewTasks) {
  RedisTaskStore* a = NewStore();
  server_->Stop();  // the first call meets the closed socket, later ones a down connection
  Status s = a->Create("t1", "o");
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(s.message(), "the task store (Redis) is unavailable; retry later");
  auto r = a->Reserve("o", "k", "d", "t2");
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(a->stats().pending, 0u);
  ASSERT_TRUE(server_->Restart().ok());
}

}  // namespace
}  // namespace sluice::redis
