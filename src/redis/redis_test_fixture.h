// Test fixture for the Redis integration tests: one real redis-server per
// test process (testing/redis_server.h), flushed before each test, and
// helpers to build connections to it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "redis/connection.h"
#include "testing/redis_server.h"

namespace sluice::redis {

class RedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new sluice::testing::RedisServer();
    start_status_ = new Status(server_->Start());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_status_;
    start_status_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(start_status_->ok()) << start_status_->ToString();
    if (!server_->running()) {
      ASSERT_TRUE(server_->Restart().ok());
    }
    connection_ = NewConnection();
    ASSERT_TRUE(connection_->WaitUntilUp(std::chrono::seconds(5)));
    ReplyResult flushed = connection_->Call({"FLUSHALL"});
    ASSERT_TRUE(flushed.ok() && !flushed->is_error());
  }

  RedisConnection::Options ConnectionOptions() const {
    RedisConnection::Options o;
    o.host = "127.0.0.1";
    o.port = server_->port();
    o.connect_timeout_ms = 500;
    o.command_timeout_ms = 2'000;
    o.reconnect_initial_backoff_ms = 10;
    o.reconnect_max_backoff_ms = 100;
    return o;
  }

  std::unique_ptr<RedisConnection> NewConnection() const {
    Result<std::unique_ptr<RedisConnection>> c = RedisConnection::Create(ConnectionOptions());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  static sluice::testing::RedisServer* server_;
  static Status* start_status_;
  std::unique_ptr<RedisConnection> connection_;
};

inline sluice::testing::RedisServer* RedisTest::server_ = nullptr;
inline Status* RedisTest::start_status_ = nullptr;

// Waits (bounded) for a condition set by another thread.
class Latch {
 public:
  void Signal() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  // True once Signal() ran at least `n` times in total.
  bool WaitFor(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace sluice::redis
