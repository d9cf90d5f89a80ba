#include "common/io_context_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/thread_name.h"

namespace sluice {
namespace {

namespace asio = boost::asio;

// Runs the pool on another thread; false if it did not return within 30 s
// (then the pool is stopped so that the test ends).
bool RunsToTheEnd(IoContextPool& pool) {
  auto done = std::async(std::launch::async, [&pool] { pool.Run(); });
  if (done.wait_for(std::chrono::seconds(30)) == std::future_status::ready) return true;
  pool.Stop();
  done.wait();
  return false;
}

TEST(IoContextPoolTest, ConnectionsGoRoundRobinOverEveryContextMainIncluded) {
  IoContextPool pool(3);
  ASSERT_EQ(pool.size(), 3u);
  std::vector<asio::io_context*> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(&pool.NextForConnection());
  EXPECT_EQ(seen[0], &pool.main());
  EXPECT_EQ(std::set<asio::io_context*>(seen.begin(), seen.begin() + 3).size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(seen[i], seen[i + 3]);
}

TEST(IoContextPoolTest, FewerThanOneThreadMeansOne) {
  IoContextPool pool(0);
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(&pool.NextForConnection(), &pool.main());
}

TEST(IoContextPoolTest, MainRunsOnTheCallerAndEveryOtherContextOnANamedThreadOfItsOwn) {
  IoContextPool pool(3);
  std::mutex mu;
  std::vector<std::pair<std::string, std::thread::id>> ran(3);  // by context
  std::atomic<int> left{3};
  std::vector<asio::io_context*> contexts;
  for (size_t i = 0; i < 3; ++i) contexts.push_back(&pool.NextForConnection());
  for (size_t i = 0; i < 3; ++i) {
    asio::post(*contexts[i], [&, i] {
      {
        std::lock_guard lock(mu);
        ran[i] = {CurrentThreadName(), std::this_thread::get_id()};
      }
      if (left.fetch_sub(1) == 1) pool.Stop();
    });
  }
  std::thread::id runner;
  std::string runner_name;
  auto done = std::async(std::launch::async, [&] {
    runner = std::this_thread::get_id();
    runner_name = CurrentThreadName();
    pool.Run();
  });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(ran[0].second, runner);
  EXPECT_EQ(ran[0].first, runner_name);
  EXPECT_EQ(ran[1].first, "sluice-io-1");
  EXPECT_EQ(ran[2].first, "sluice-io-2");
  EXPECT_NE(ran[1].second, runner);
  EXPECT_NE(ran[2].second, runner);
  EXPECT_NE(ran[1].second, ran[2].second);
}

// A context with nothing to do yet keeps its thread until Stop(): work that
// reaches it later (a connection handed over) still runs.
TEST(IoContextPoolTest, AnIdleContextWaitsForWorkUntilStopped) {
  IoContextPool pool(2);
  asio::io_context& main = pool.NextForConnection();
  asio::io_context& other = pool.NextForConnection();
  ASSERT_NE(&main, &other);
  bool reached_other = false;
  asio::post(main, [&] {
    asio::post(other, [&] {
      reached_other = true;
      asio::post(main, [&] { pool.Stop(); });
    });
  });
  ASSERT_TRUE(RunsToTheEnd(pool));
  EXPECT_TRUE(reached_other);
}

// A handler queued on one context may hold the last reference to an object
// of another (a session's handler and the listener's state): destroying the
// pool unrun must not free a context whose objects are still to be
// released (AddressSanitizer reports it if it does).
TEST(IoContextPoolTest, DestroyingItWithHandlersHoldingAnotherContextsObjectsIsSafe) {
  auto pool = std::make_unique<IoContextPool>(3);
  asio::io_context& main = pool->NextForConnection();
  asio::io_context& other = pool->NextForConnection();
  auto timer = std::make_shared<asio::steady_timer>(main);
  timer->expires_after(std::chrono::hours(1));
  timer->async_wait([](boost::system::error_code) {});
  std::weak_ptr<asio::steady_timer> watch = timer;
  asio::post(other, [timer = std::move(timer)] {});
  ASSERT_FALSE(watch.expired());
  pool.reset();
  EXPECT_TRUE(watch.expired());
}

// Without Stop(), Run() returns once every context ran out of work.
TEST(IoContextPoolTest, RunReturnsWhenEveryContextRanOutOfWork) {
  IoContextPool pool(2);
  std::atomic<int> ran{0};
  asio::post(pool.NextForConnection(), [&] { ++ran; });
  asio::post(pool.NextForConnection(), [&] { ++ran; });
  ASSERT_TRUE(RunsToTheEnd(pool));
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace sluice
