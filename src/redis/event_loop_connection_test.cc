#include "redis/event_loop_connection.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "redis/redis_test_fixture.h"

namespace sluice::redis {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

// An io_context run by one thread until the object is destroyed.
class Loop {
 public:
  Loop() : guard_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {}
  ~Loop() { Stop(); }
  void Stop() {
    guard_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }
  boost::asio::io_context& ioc() { return ioc_; }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

class EventLoopConnectionTest : public RedisTest {
 protected:
  std::unique_ptr<EventLoopConnection> Connect(EventLoopConnection::Options o) {
    auto c = EventLoopConnection::Create(loop_.ioc(), o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  std::unique_ptr<EventLoopConnection> Connect() { return Connect(ConnectionOptions()); }

  Loop loop_;
};

TEST_F(EventLoopConnectionTest, RepliesArriveInOrderOnTheLoop) {
  auto c = Connect();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  ReplyResult set = c->Call({"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  ReplyResult get = c->Call({"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, std::string("v\0w", 3));
  ReplyResult bad = c->Call({"INCR", "k"});
  ASSERT_TRUE(bad.ok());  // an error reply is a reply
  EXPECT_TRUE(bad->is_error());
  EXPECT_EQ(c->stats().error_replies, 1u);

  // Hold the loop while 1000 commands are submitted from this thread; once
  // released they go out in a few writes, answered in order, on the loop.
  Latch held, release, done;
  boost::asio::post(loop_.ioc(), [&] {
    held.Signal();
    release.WaitFor(1, milliseconds(5'000));
  });
  ASSERT_TRUE(held.WaitFor(1, milliseconds(5'000)));
  const uint64_t pipelines_before = c->stats().pipelines;
  constexpr int kCommands = 1000;
  std::vector<int64_t> values;
  std::atomic<int> off_loop{0};
  for (int i = 0; i < kCommands; ++i) {
    c->Submit({"INCR", "counter"}, [&](ReplyResult r) {
      if (std::this_thread::get_id() != loop_.id()) off_loop.fetch_add(1);
      values.push_back(r.ok() ? r->AsInt().value_or(-1) : -1);  // loop thread only
      done.Signal();
    });
  }
  release.Signal();
  ASSERT_TRUE(done.WaitFor(kCommands, milliseconds(10'000)));
  ASSERT_EQ(values.size(), static_cast<size_t>(kCommands));
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ(values[i], i + 1);
  EXPECT_EQ(off_loop.load(), 0);
  // The first command goes out alone, the other 999 behind it in one write
  // (a health PING may add one).
  EXPECT_LE(c->stats().pipelines - pipelines_before, 3u);
}

TEST_F(EventLoopConnectionTest, BlockingCallsFromTheLoopFailInsteadOfDeadlocking) {
  auto c = Connect();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  Latch done;
  Status from_loop;
  boost::asio::post(loop_.ioc(), [&] {  // any handler of the loop, not only the connection's
    from_loop = c->Call({"PING"}).status();
    done.Signal();
  });
  ASSERT_TRUE(done.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(from_loop.code(), ErrorCode::kInternal) << from_loop.ToString();

  Latch inner;
  Status from_callback;
  c->Submit({"PING"}, [&](ReplyResult) {
    from_callback = c->Call({"PING"}).status();
    inner.Signal();
  });
  ASSERT_TRUE(inner.WaitFor(1, milliseconds(5'000)));
  EXPECT_EQ(from_callback.code(), ErrorCode::kInternal) << from_callback.ToString();
}

TEST_F(EventLoopConnectionTest, ScriptsAreLoadedOnceAndReloadedAfterNoscript) {
  auto c = Connect();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  const LuaScript echo("echo", "return ARGV[1] .. KEYS[1]");
  ReplyResult first = c->CallScript(echo, {"k"}, {"a"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->str, "ak") << first->DebugString();
  EXPECT_EQ(c->stats().scripts_reloaded, 0u);  // loaded ahead of its first EVALSHA
  ASSERT_TRUE(c->Call({"SCRIPT", "FLUSH"}).ok());
  ReplyResult second = c->CallScript(echo, {"k"}, {"b"});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->str, "bk") << second->DebugString();
  EXPECT_EQ(c->stats().scripts_reloaded, 1u);
}

TEST_F(EventLoopConnectionTest, FailsFastWhileDownAndReconnectsWithItsScripts) {
  auto c = Connect();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  const LuaScript echo("echo", "return ARGV[1]");
  ASSERT_TRUE(c->CallScript(echo, {}, {"x"}).ok());
  server_->Stop();

  // The first command meets the closed socket; later ones are refused at
  // once while down. None may wait for WaitForReply's own deadline.
  for (int i = 0; i < 5; ++i) {
    const auto start = SteadyTime::now();
    ReplyResult r = c->Call({"PING"});
    EXPECT_LT(SteadyTime::now() - start, milliseconds(1'000)) << "call " << i;
    EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().ToString();
    EXPECT_EQ(r.status().message().find("no reply within"), std::string::npos)
        << r.status().ToString();
  }
  EXPECT_EQ(c->state(), RedisClient::State::kDown);
  EXPECT_GE(c->stats().rejected_while_down, 1u);
  EXPECT_GE(c->stats().io_errors, 1u);

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  EXPECT_GE(c->stats().reconnects, 1u);
  ReplyResult exists = c->Call({"SCRIPT", "EXISTS", echo.sha1()});
  ASSERT_TRUE(exists.ok());
  ASSERT_EQ(exists->elements.size(), 1u);
  EXPECT_EQ(exists->elements[0].integer, 1);  // loaded again while reconnecting
  ReplyResult again = c->CallScript(echo, {}, {"y"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->str, "y");
  EXPECT_EQ(c->stats().scripts_reloaded, 0u);
}

TEST_F(EventLoopConnectionTest, AReplyThatNeverComesResetsTheConnection) {
  EventLoopConnection::Options o = ConnectionOptions();
  o.command_timeout_ms = 200;
  auto c = Connect(o);
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  // BLPOP blocks for 5 s, far past the 200 ms reply timeout.
  ReplyResult blocked = c->Call({"BLPOP", "never-filled", "5"});
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(blocked.status().message().find("no reply within 200 ms"), std::string::npos)
      << blocked.status().ToString();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  ReplyResult pong = c->Call({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status().ToString();
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(EventLoopConnectionTest, CommandsWaitForTheFirstConnect) {
  boost::asio::io_context later;  // not running yet: nothing connects
  auto c = std::move(EventLoopConnection::Create(later, ConnectionOptions())).value();
  EXPECT_EQ(c->state(), RedisClient::State::kConnecting);
  std::optional<ReplyResult> early;
  c->Submit({"PING"}, [&](ReplyResult r) { early.emplace(std::move(r)); });
  for (int i = 0; i < 500 && !early; ++i) later.run_for(milliseconds(10));
  ASSERT_TRUE(early.has_value());
  ASSERT_TRUE(early->ok()) << early->status().ToString();
  EXPECT_EQ((*early)->str, "PONG");

  // Destroyed once its loop has stopped: what is still queued is failed,
  // on the destroying thread.
  std::optional<ReplyResult> late;
  c->Submit({"PING"}, [&](ReplyResult r) { late.emplace(std::move(r)); });
  later.stop();
  c.reset();
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(late->status().message().find("redis connection closed"), std::string::npos);
}

TEST_F(EventLoopConnectionTest, DestroyedBeforeItsLoopEverRanItFailsWhatWasSubmittedAtOnce) {
  boost::asio::io_context never_run;
  auto c = std::move(EventLoopConnection::Create(never_run, ConnectionOptions())).value();
  std::optional<ReplyResult> reply;
  c->Submit({"PING"}, [&](ReplyResult r) { reply.emplace(std::move(r)); });
  const auto start = SteadyTime::now();
  c.reset();
  EXPECT_LT(SteadyTime::now() - start, milliseconds(1'000));  // no wait for a loop that never runs
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(reply->status().message().find("redis connection closed"), std::string::npos)
      << reply->status().ToString();
  never_run.run();  // the handlers left behind find it closed and do nothing
}

TEST_F(EventLoopConnectionTest, DestroyedWhileItsLoopRunsFailsWhatIsInFlightBeforeReturning) {
  auto c = Connect();
  ASSERT_TRUE(c->WaitUntilUp(milliseconds(5'000)));
  Latch sent;
  std::atomic<bool> failed{false};
  std::string why;
  // BLPOP holds its reply for 5 s, and the PING written behind it waits for
  // it; the connection is destroyed long before either reply or the 2 s
  // reply timeout.
  c->Submit({"BLPOP", "never-filled", "5"}, [&](ReplyResult r) {
    why = r.status().message();
    failed = !r.ok();
  });
  c->Submit({"PING"}, [&](ReplyResult) { sent.Signal(); });
  // Not answered before the BLPOP: wait until both are written instead.
  for (int i = 0; i < 500 && c->stats().commands_sent < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_GE(c->stats().commands_sent, 2u);
  c.reset();
  EXPECT_TRUE(failed.load());
  EXPECT_NE(why.find("redis connection closed"), std::string::npos) << why;
  EXPECT_EQ(sent.count(), 1);  // the PING behind it was failed too, once
}

TEST(EventLoopConnectionAuthTest, AuthenticatesAndNeverShowsThePassword) {
  sluice::testing::RedisServer server({.extra_args = {"--requirepass", "s3cret-pw"}});
  ASSERT_TRUE(server.Start().ok());
  Loop loop;
  auto connect = [&](const std::string& user, const std::string& password) {
    EventLoopConnection::Options o;
    o.port = server.port();
    o.username = user;
    o.password = password;
    o.client_name = "auth-test";
    o.reconnect_initial_backoff_ms = 50;
    return std::move(EventLoopConnection::Create(loop.ioc(), o)).value();
  };
  auto good = connect("default", "s3cret-pw");
  ASSERT_TRUE(good->WaitUntilUp(milliseconds(5'000)));
  ReplyResult name = good->Call({"CLIENT", "GETNAME"});
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->str, "auth-test");

  // Submitted before the first attempt ends (the loop is not running yet),
  // the command is failed with the server's refusal, never the password.
  boost::asio::io_context later;
  EventLoopConnection::Options o;
  o.port = server.port();
  o.username = "default";
  o.password = "not-the-password";
  auto wrong = std::move(EventLoopConnection::Create(later, o)).value();
  std::optional<ReplyResult> refused;
  wrong->Submit({"PING"}, [&](ReplyResult r) { refused.emplace(std::move(r)); });
  for (int i = 0; i < 500 && !refused; ++i) later.run_for(milliseconds(10));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status().code(), ErrorCode::kUnavailable);
  const std::string why = refused->status().message();
  EXPECT_NE(why.find("redis unavailable"), std::string::npos) << why;
  EXPECT_NE(why.find("redis AUTH as 'default' refused: WRONGPASS"), std::string::npos) << why;
  EXPECT_EQ(why.find("not-the-password"), std::string::npos) << why;
  EXPECT_NE(wrong->state(), RedisClient::State::kUp);
  later.stop();  // destroyed after its loop stopped (the contract)
  EXPECT_GE(wrong->stats().io_errors, 1u);
}

TEST_F(EventLoopConnectionTest, InvalidOptionsAreRejected) {
  EventLoopConnection::Options o = ConnectionOptions();
  o.port = 0;
  EXPECT_EQ(EventLoopConnection::Create(loop_.ioc(), o).status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::redis
