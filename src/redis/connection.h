// RedisConnection: one pipelined connection to a Redis server, asynchronous
// to its callers.
//
// A dedicated thread owns one hiredis synchronous context. Callers Submit()
// a command (argv) with a completion callback and return at once; the thread
// takes everything queued (up to max_pipeline_commands), appends it to the
// output buffer, writes it in one go and then reads the replies in order — so
// N concurrent callers cost one round trip, not N.
//
// Failure handling. Any I/O error (connection refused or reset, a read
// waiting longer than command_timeout_ms) fails every command in flight and
// every queued command at once with kUnavailable, closes the context and
// marks the connection down. While down, Submit() fails immediately (the
// callback runs inline on the caller's thread with kUnavailable): a gateway
// answers 503 at once instead of hanging. The thread reconnects by itself
// with exponential backoff (reconnect_initial_backoff_ms doubling up to
// reconnect_max_backoff_ms). Before the first connection attempt has ended
// (state kConnecting) submissions are queued. While idle, a PING every
// health_check_interval_ms notices a dead server before the next request.
//
// Scripts. RunScript() sends EVALSHA, preceded in the same pipeline by a
// SCRIPT LOAD the first time this connection sees the script. On a NOSCRIPT
// reply (SCRIPT FLUSH, a failover) it sends SCRIPT LOAD and the EVALSHA again
// (one retry; the retry queues behind commands submitted meanwhile). After
// every reconnect, every script run so far is re-loaded before the
// connection is marked up, so a restarted server costs no NOSCRIPT round.
//
// Blocking commands (BLPOP...) hold the pipeline until they return: give them
// their own connection, with command_timeout_ms above their block time.
//
// Thread-safety: all methods are thread-safe. Callbacks run on the
// connection's thread (or inline in Submit() when down or full), one at a
// time; they must not block, and must not call Call()/CallScript() (that
// would wait on the thread running them: such a call fails with kInternal).
// They may Submit() more commands. Exceptions thrown by a callback are
// caught and counted. The RedisClient contract (client.h) holds.
//
// Lifetime: the destructor stops the thread (waiting at most one connect or
// command timeout) and fails whatever is still queued with kUnavailable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "redis/client.h"
#include "redis/lua_script.h"
#include "redis/reply.h"

struct redisContext;  // hiredis

namespace sluice::redis {

// The counters behind a connection's stats(): bumped from any thread
// (relaxed), read as one Stats.
struct ConnectionCounters {
  std::atomic<uint64_t> commands_sent{0}, pipelines{0}, error_replies{0}, io_errors{0},
      reconnects{0}, rejected_while_down{0}, scripts_reloaded{0}, callback_exceptions{0};
  RedisClient::Stats Snapshot() const;
};

class RedisConnection final : public RedisClient {
 public:
  struct Options {
    std::string host = "127.0.0.1";      // IP address or name of the server
    int port = 6379;                     // 1..65535
    int64_t connect_timeout_ms = 1'000;  // TCP connect; > 0
    // Longest wait for any reply of a pipeline (and for a write); longer is
    // an I/O error (the connection is reset). > 0.
    int64_t command_timeout_ms = 1'000;
    int64_t reconnect_initial_backoff_ms = 50;  // first wait after a failure; > 0
    int64_t reconnect_max_backoff_ms = 2'000;   // cap of the doubling; >= initial
    // Idle time after which the thread PINGs the server; 0 = never.
    int64_t health_check_interval_ms = 1'000;
    // Commands waiting to be written; Submit() beyond fails with kUnavailable.
    size_t max_queued_commands = 100'000;
    // Commands written per pipeline before the replies are read; >= 1.
    size_t max_pipeline_commands = 1'024;
    // CLIENT SETNAME after connecting (shows in CLIENT LIST); empty = none.
    std::string client_name;
    // AUTH after connecting, before anything else: `password` alone (the
    // default user, requirepass) or with `username` (an ACL user). Empty
    // password = no AUTH. A refused AUTH is a failed connect (retried with
    // backoff); the error never shows the password.
    std::string username;
    std::string password;
  };

  // Validates `options` and starts the thread, which connects in the
  // background (see WaitUntilUp). Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisConnection>> Create(const Options& options);
  // The checks of Create(): OK, or kInvalidArgument naming the field.
  static Status Validate(const Options& options);
  ~RedisConnection() override;

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Queues one command; `done` runs exactly once with its reply (Redis error
  // replies are replies, see reply.h) or kUnavailable. Never blocks.
  // REQUIRES: !argv.empty().
  void Submit(std::vector<std::string> argv, ReplyCallback done) override;
  // Submit() preceded, in the same pipeline, by ASKING (whose reply is
  // dropped): a Redis Cluster ASK redirect's retry on the importing node.
  void SubmitAsking(std::vector<std::string> argv, ReplyCallback done);

  // EVALSHA `script` with `keys` and `args` (NOSCRIPT handled, see above).
  void RunScript(const LuaScript& script, std::vector<std::string> keys,
                 std::vector<std::string> args, ReplyCallback done) override;

  // Blocking forms, for callers that may wait one round trip (never from a
  // callback; from the connection's own thread they fail with kInternal).
  // They wait at most reply_wait_limit().
  ReplyResult Call(std::vector<std::string> argv) override;
  ReplyResult CallScript(const LuaScript& script, std::vector<std::string> keys,
                         std::vector<std::string> args) override;

  // Blocks until the connection is up or `timeout` passed; true when up.
  bool WaitUntilUp(std::chrono::milliseconds timeout) override;

  // reply_wait_limit() and NewBlockingClient() of a connection with
  // `options` (shared with EventLoopConnection).
  static std::chrono::milliseconds ReplyWaitLimit(const Options& options);
  static Result<std::unique_ptr<RedisClient>> NewBlockingConnection(const Options& options,
                                                                    const std::string& name_suffix,
                                                                    int64_t command_timeout_ms);

  State state() const override { return state_.load(std::memory_order_acquire); }
  Stats stats() const override;
  std::chrono::milliseconds reply_wait_limit() const override;
  Result<std::unique_ptr<RedisClient>> NewBlockingClient(const std::string& name_suffix,
                                                         int64_t command_timeout_ms) const override;
  const Options& options() const { return options_; }

 private:
  struct Pending {
    std::vector<std::string> argv;
    ReplyCallback done;
    bool asking = false;  // write ASKING first (its reply is dropped)
  };

  explicit RedisConnection(const Options& options);

  void Run();
  // Connects, names the client and loads known scripts; false on failure.
  bool Connect(std::string* error);
  // Writes `batch` and reads its replies; false after an I/O error (the
  // unanswered commands are failed).
  bool Pipeline(std::vector<Pending>& batch, std::string* error);
  void CloseContext();
  void SetState(State state);
  // Fails everything queued with `status` (outside the lock).
  void FailQueued(const Status& status);
  void Deliver(ReplyCallback& done, ReplyResult reply);
  void Enqueue(Pending pending);
  ReplyResult Wait(const std::function<void(ReplyCallback)>& start);

  const Options options_;
  std::atomic<State> state_{State::kConnecting};
  redisContext* context_ = nullptr;  // the thread's only

  mutable std::mutex mu_;
  std::condition_variable work_cv_;             // work queued or stopping
  std::condition_variable state_cv_;            // state changed
  std::deque<Pending> queue_;                   // GUARDED_BY(mu_)
  bool stopping_ = false;                       // GUARDED_BY(mu_)
  std::map<std::string, std::string> scripts_;  // GUARDED_BY(mu_); sha1 -> body

  ConnectionCounters counters_;

  std::thread thread_;  // last: started after everything above exists
};

// Sends AUTH [username] password on a connected blocking context; true when
// `password` is empty or the server accepted it, else false with *error
// naming the user (never the password). For the subscriber too.
bool Authenticate(redisContext* c, const std::string& username, const std::string& password,
                  std::string* error);

}  // namespace sluice::redis
