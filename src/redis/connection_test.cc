#include "redis/connection.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "redis/redis_test_fixture.h"
#include "redis/subscriber.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

TEST_F(RedisTest, RoundTripReturnsReplies) {
  ReplyResult set = connection_->Call({"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  ReplyResult get = connection_->Call({"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, std::string("v\0w", 3));  // binary safe
  ReplyResult missing = connection_->Call({"GET", "nope"});
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->is_nil());
  ReplyResult bad = connection_->Call({"INCR", "k"});
  ASSERT_TRUE(bad.ok());  // an error reply is a reply, not a transport failure
  EXPECT_TRUE(bad->is_error());
  EXPECT_EQ(ExpectNoError(bad, "incr").status().code(), ErrorCode::kInternal);
}

TEST_F(RedisTest, QueuedCommandsArePipelinedInOrder) {
  // Hold the connection thread inside a callback while 1000 commands queue
  // up behind it; released, they must go out in one pipeline, in order.
  Latch release;
  Latch held;
  connection_->Submit({"PING"}, [&](ReplyResult) {
    held.Signal();
    release.WaitFor(1, milliseconds(5'000));
  });
  ASSERT_TRUE(held.WaitFor(1, milliseconds(5'000)));
  const uint64_t sent_before = connection_->stats().commands_sent;
  constexpr int kCommands = 1000;
  std::vector<int64_t> values;
  std::mutex mu;
  Latch done;
  for (int i = 0; i < kCommands; ++i) {
    connection_->Submit({"INCR", "counter"}, [&](ReplyResult r) {
      std::lock_guard lock(mu);
      values.push_back(r.ok() ? r->AsInt().value_or(-1) : -1);
      done.Signal();
    });
  }
  const uint64_t pipelines_before = connection_->stats().pipelines;
  release.Signal();
  ASSERT_TRUE(done.WaitFor(kCommands, milliseconds(10'000)));
  ASSERT_EQ(values.size(), static_cast<size_t>(kCommands));
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ(values[i], i + 1);
  EXPECT_EQ(connection_->stats().commands_sent - sent_before, static_cast<uint64_t>(kCommands));
  // 1000 commands, max_pipeline_commands 1024: one round trip (a health
  // PING may add one).
  EXPECT_LE(connection_->stats().pipelines - pipelines_before, 2u);
}

TEST_F(RedisTest, ScriptsAreReloadedAfterNoscript) {
  const LuaScript echo("echo", "return ARGV[1] .. KEYS[1]");
  ReplyResult first = connection_->CallScript(echo, {"k"}, {"a"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->str, "ak");
  ASSERT_TRUE(connection_->Call({"SCRIPT", "FLUSH"}).ok());
  ReplyResult second = connection_->CallScript(echo, {"k"}, {"b"});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->str, "bk") << second->DebugString();
  EXPECT_EQ(connection_->stats().scripts_reloaded, 1u);
}

TEST_F(RedisTest, FailsFastWhileDownAndReconnectsAfterRestart) {
  const LuaScript echo("echo", "return ARGV[1]");
  ASSERT_TRUE(connection_->CallScript(echo, {}, {"x"}).ok());
  server_->Stop();

  // The first command after the stop meets the closed socket; every later
  // one is refused at once. Neither may hang.
  for (int i = 0; i < 5; ++i) {
    const auto start = SteadyTime::now();
    std::atomic<int64_t> elapsed_us{-1};
    Latch done;
    Status status;
    connection_->Submit({"PING"}, [&](ReplyResult r) {
      status = r.status();
      elapsed_us =
          std::chrono::duration_cast<std::chrono::microseconds>(SteadyTime::now() - start).count();
      done.Signal();
    });
    ASSERT_TRUE(done.WaitFor(1, milliseconds(2'000)));
    EXPECT_EQ(status.code(), ErrorCode::kUnavailable) << status.ToString();
    // At once, not after the 2 s command timeout (the margin is for a
    // loaded machine).
    EXPECT_LT(elapsed_us.load(), 1'000'000) << "submission " << i;
  }
  EXPECT_EQ(connection_->state(), RedisConnection::State::kDown);
  EXPECT_GE(connection_->stats().rejected_while_down, 1u);
  ReplyResult blocking = connection_->Call({"PING"});
  EXPECT_EQ(blocking.status().code(), ErrorCode::kUnavailable);

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(connection_->WaitUntilUp(milliseconds(5'000)));
  EXPECT_GE(connection_->stats().reconnects, 1u);
  // The restarted server has an empty script cache; the connection loaded
  // the script again while reconnecting, so no NOSCRIPT round is needed.
  ReplyResult exists = connection_->Call({"SCRIPT", "EXISTS", echo.sha1()});
  ASSERT_TRUE(exists.ok());
  ASSERT_EQ(exists->elements.size(), 1u);
  EXPECT_EQ(exists->elements[0].integer, 1);
  ReplyResult again = connection_->CallScript(echo, {}, {"y"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->str, "y");
  EXPECT_EQ(connection_->stats().scripts_reloaded, 0u);
}

TEST_F(RedisTest, SubscriberReceivesAndResubscribesAfterRestart) {
  std::mutex mu;
  std::vector<std::string> received;
  Latch messages;
  RedisSubscriber::Options o;
  o.host = "127.0.0.1";
  o.port = server_->port();
  o.channels = {"ch-1", "ch-2"};
  o.reconnect_initial_backoff_ms = 10;
  o.reconnect_max_backoff_ms = 100;
  o.on_message = [&](const std::string& channel, std::string payload) {
    {
      std::lock_guard lock(mu);
      received.push_back(channel + "=" + payload);
    }
    messages.Signal();
  };
  Result<std::unique_ptr<RedisSubscriber>> sub = RedisSubscriber::Create(std::move(o));
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_TRUE((*sub)->WaitUntilSubscribed(milliseconds(5'000)));
  ReplyResult n = connection_->Call({"PUBLISH", "ch-2", "one"});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->integer, 1);
  ASSERT_TRUE(messages.WaitFor(1, milliseconds(5'000)));

  ASSERT_TRUE(server_->Restart().ok());
  // The subscriber notices the lost connection and subscribes again (it
  // may do so faster than any poll of subscribed() could see the gap, so
  // its own count of resubscriptions is what tells).
  bool resubscribed = false;
  for (int i = 0; i < 5'000 && !resubscribed; ++i) {
    resubscribed = (*sub)->stats().resubscribes >= 1;
    if (!resubscribed) std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(resubscribed);
  EXPECT_GE((*sub)->stats().io_errors, 1u);
  ASSERT_TRUE((*sub)->WaitUntilSubscribed(milliseconds(5'000)));
  // The publishing connection may first have to notice the restart itself
  // (its first command fails fast), then reconnects.
  ReplyResult again = Unavailable("not sent");
  for (int i = 0; i < 50 && !again.ok(); ++i) {
    connection_->WaitUntilUp(milliseconds(100));
    again = connection_->Call({"PUBLISH", "ch-1", "two"});
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->integer, 1);
  ASSERT_TRUE(messages.WaitFor(2, milliseconds(5'000)));
  std::lock_guard lock(mu);
  EXPECT_EQ(received, (std::vector<std::string>{"ch-2=one", "ch-1=two"}));
  EXPECT_GE((*sub)->stats().resubscribes, 1u);
}

// A server with a password (requirepass): connections and subscribers that
// AUTH work; a wrong password is a failed connect whose error names the
// refusal but not the password; without AUTH every command is refused.
TEST(RedisAuthTest, ConnectionsAndSubscribersAuthenticate) {
  sluice::testing::RedisServer server({.extra_args = {"--requirepass", "s3cret-pw"}});
  ASSERT_TRUE(server.Start().ok());
  auto connect = [&](const std::string& user, const std::string& password) {
    RedisConnection::Options o;
    o.port = server.port();
    o.username = user;
    o.password = password;
    o.client_name = "auth-test";
    o.reconnect_initial_backoff_ms = 50;
    return std::move(RedisConnection::Create(o)).value();
  };
  auto good = connect("", "s3cret-pw");
  ASSERT_TRUE(good->WaitUntilUp(milliseconds(5'000)));
  ReplyResult pong = good->Call({"PING"});
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->str, "PONG");
  auto named = connect("default", "s3cret-pw");  // AUTH username password (ACL form)
  ASSERT_TRUE(named->WaitUntilUp(milliseconds(5'000)));

  auto wrong = connect("default", "not-the-password");
  EXPECT_FALSE(wrong->WaitUntilUp(milliseconds(300)));
  ReplyResult refused = wrong->Call({"PING"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable);
  const std::string why = refused.status().message();
  // Down: refused at once, or the connect attempt's own error.
  EXPECT_TRUE(why.find("redis unavailable") != std::string::npos ||
              why.find("AUTH") != std::string::npos)
      << why;
  EXPECT_EQ(why.find("not-the-password"), std::string::npos) << why;
  EXPECT_GE(wrong->stats().io_errors, 1u);

  RedisConnection::Options anonymous_options;
  anonymous_options.port = server.port();
  auto anonymous = std::move(RedisConnection::Create(anonymous_options)).value();
  ReplyResult noauth = anonymous->Call({"PING"});
  ASSERT_TRUE(noauth.ok());
  EXPECT_TRUE(noauth->is_error());
  EXPECT_EQ(noauth->str.rfind("NOAUTH", 0), 0u) << noauth->str;

  Latch got;
  std::string payload;
  RedisSubscriber::Options s;
  s.port = server.port();
  s.channels = {"ch"};
  s.password = "s3cret-pw";
  s.on_message = [&](const std::string&, std::string p) {
    payload = std::move(p);
    got.Signal();
  };
  auto sub = std::move(RedisSubscriber::Create(std::move(s))).value();
  ASSERT_TRUE(sub->WaitUntilSubscribed(milliseconds(5'000)));
  ReplyResult published = good->Call({"PUBLISH", "ch", "hello"});
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->integer, 1);
  ASSERT_TRUE(got.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(payload, "hello");
}

TEST_F(RedisTest, InvalidOptionsAreRejected) {
  RedisConnection::Options o = ConnectionOptions();
  o.port = 0;
  EXPECT_EQ(RedisConnection::Create(o).status().code(), ErrorCode::kInvalidArgument);
  o = ConnectionOptions();
  o.reconnect_max_backoff_ms = 1;
  EXPECT_EQ(RedisConnection::Create(o).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(RedisTest, ConnectionToNothingFailsWithoutHanging) {
  RedisConnection::Options o = ConnectionOptions();
  o.port = server_->port();
  server_->Stop();
  Result<std::unique_ptr<RedisConnection>> c = RedisConnection::Create(o);
  ASSERT_TRUE(c.ok());
  const auto start = SteadyTime::now();
  ReplyResult r = (*c)->Call({"PING"});
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_LT(SteadyTime::now() - start, milliseconds(1'000));
}

}  // namespace
}  // namespace sluice::redis
