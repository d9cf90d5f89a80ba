// RedisSubscriber: a connection in SUBSCRIBE mode, delivering every message
// published on a fixed set of channels.
//
// A dedicated thread owns one hiredis context: it connects, subscribes to
// all `channels`, and then reads messages, calling on_message for each.
// After any I/O error it reconnects with backoff and subscribes again. Pub/sub
// is fire-and-forget: messages published while the subscriber is not
// subscribed are lost (Redis drops them; PUBLISH reports 0 receivers), so
// whoever waits on them needs its own timeout. When idle, a PING every
// health_check_interval_ms that is not answered within command_timeout_ms
// counts as an I/O error (a hung or unreachable server is noticed).
//
// Thread-safety: Create/WaitUntilSubscribed/stats/subscribed are
// thread-safe. Callbacks run on the subscriber's thread, one at a time; they
// must not block for long (messages queue up in the socket meanwhile).
// Exceptions from callbacks are caught and counted.
//
// Lifetime: the destructor wakes and joins the thread (no callback runs after
// it returns). The callbacks' captures must outlive the subscriber.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

struct redisContext;  // hiredis

namespace sluice::redis {

class RedisSubscriber {
 public:
  using MessageFn = std::function<void(const std::string& channel, std::string payload)>;

  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    // Other servers to subscribe at, tried in turn after a failed session
    // ("host:port"; Redis Cluster: every node delivers every PUBLISH).
    std::vector<std::pair<std::string, int>> fallbacks;
    std::vector<std::string> channels;   // SUBSCRIBE targets; non-empty
    int64_t connect_timeout_ms = 1'000;  // > 0
    // Longest wait for a PING's answer or a write; > 0.
    int64_t command_timeout_ms = 1'000;
    int64_t reconnect_initial_backoff_ms = 50;  // > 0
    int64_t reconnect_max_backoff_ms = 2'000;   // >= initial
    int64_t health_check_interval_ms = 1'000;   // idle PING period; > 0
    std::string username;                       // AUTH as in RedisConnection::Options
    std::string password;
    MessageFn on_message;  // required
    // Runs each time all channels are (re)subscribed; optional.
    std::function<void()> on_subscribed;
  };

  struct Stats {
    uint64_t messages = 0;             // messages delivered to on_message
    uint64_t io_errors = 0;            // connections lost or refused
    uint64_t resubscribes = 0;         // subscriptions after the first
    uint64_t callback_exceptions = 0;  // exceptions caught from callbacks
  };

  // Errors: kInvalidArgument naming the field; kInternal if no eventfd.
  static Result<std::unique_ptr<RedisSubscriber>> Create(Options options);
  ~RedisSubscriber();

  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  // True while every channel is subscribed.
  bool subscribed() const { return subscribed_.load(std::memory_order_acquire); }
  // Blocks until subscribed or `timeout` passed; true when subscribed.
  bool WaitUntilSubscribed(std::chrono::milliseconds timeout);
  Stats stats() const;

 private:
  explicit RedisSubscriber(Options options, int wake_fd);

  void Run();
  // One connection's life: connect, subscribe, read until an error or stop.
  // Returns the error; empty when stopping.
  std::string Session(const std::string& host, int port);
  bool Stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Sleeps up to `ms`, returning early when stopping.
  void Sleep(int64_t ms);
  void SetSubscribed(bool value);
  template <typename Fn>
  void Guarded(Fn&& fn);

  const Options options_;
  const int wake_fd_;  // eventfd: written once by the destructor
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  redisContext* context_ = nullptr;  // the thread's only
  bool resubscribe_seen_ = false;    // the thread's only: subscribed once before

  std::mutex mu_;
  std::condition_variable cv_;  // subscribed_ changed

  std::atomic<uint64_t> messages_{0};
  std::atomic<uint64_t> io_errors_{0};
  std::atomic<uint64_t> resubscribes_{0};
  std::atomic<uint64_t> callback_exceptions_{0};

  std::thread thread_;
};

}  // namespace sluice::redis
