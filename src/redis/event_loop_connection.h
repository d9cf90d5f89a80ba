// EventLoopConnection: one pipelined connection to a Redis server whose I/O
// runs on an asio io_context — the event loop of the code that submits —
// instead of on a thread of its own (RedisConnection).
//
// Why: a gateway submits its enqueue calls from its event loop. Through a
// RedisConnection each call wakes the connection's thread, which writes,
// blocks on the read and hands the reply back to the event loop: two thread
// hand-offs per call, which at low rates cost more CPU than the call itself.
// Here a call submitted on the loop is written on the loop, and its reply is
// read and delivered there.
//
// Same contract as RedisConnection (connection.h), with these differences:
//   - Callbacks run on the connection's strand of the io_context (or inline
//     in Submit()/RunScript() when the command fails at once). They must not
//     block. Call()/CallScript() from any thread running the io_context
//     fail with kInternal (the loop would wait on itself).
//   - Commands submitted while a write is in flight go out together in the
//     next write (at most max_pipeline_commands per write), so N callers in
//     one turn cost one round trip.
//   - Nothing connects until the io_context runs. Until the first connect
//     attempt has ended (state kConnecting), submissions are queued.
//   - command_timeout_ms bounds the wait for the next reply while commands
//     are in flight (a reply that does not come resets the connection) and
//     the connect itself is bounded by connect_timeout_ms.
// Failure handling, script loading (SCRIPT LOAD ahead of a script's first
// EVALSHA, NOSCRIPT answered by a load and one retry, every known script
// loaded again after a reconnect), AUTH, CLIENT SETNAME, idle PINGs and the
// reconnect backoff are RedisConnection's.
//
// Thread-safety: all methods are thread-safe. Lifetime: destroy it before
// its io_context. The destructor closes the socket and fails what is queued
// or in flight with kUnavailable; called while another thread runs the
// io_context, it waits (at most reply_wait_limit()) for the loop to do so.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "redis/client.h"
#include "redis/connection.h"
#include "redis/lua_script.h"
#include "redis/reply.h"

namespace sluice::redis {

class EventLoopConnection final : public RedisClient {
 public:
  using Options = RedisConnection::Options;

  // Validates `options` (RedisConnection::Validate) and schedules the first
  // connect on `ioc`, which must outlive the connection. Errors:
  // kInvalidArgument naming the field.
  static Result<std::unique_ptr<EventLoopConnection>> Create(boost::asio::io_context& ioc,
                                                             const Options& options);
  ~EventLoopConnection() override;

  EventLoopConnection(const EventLoopConnection&) = delete;
  EventLoopConnection& operator=(const EventLoopConnection&) = delete;

  void Submit(std::vector<std::string> argv, ReplyCallback done) override;
  void RunScript(const LuaScript& script, std::vector<std::string> keys,
                 std::vector<std::string> args, ReplyCallback done) override;
  ReplyResult Call(std::vector<std::string> argv) override;
  ReplyResult CallScript(const LuaScript& script, std::vector<std::string> keys,
                         std::vector<std::string> args) override;
  bool WaitUntilUp(std::chrono::milliseconds timeout) override;
  State state() const override;
  Stats stats() const override;
  std::chrono::milliseconds reply_wait_limit() const override;
  // A RedisConnection (a thread of its own: blocking commands must not hold
  // an event loop) to the same server.
  Result<std::unique_ptr<RedisClient>> NewBlockingClient(const std::string& name_suffix,
                                                         int64_t command_timeout_ms) const override;

  // The state shared with the handlers on the loop (event_loop_connection.cc).
  class Core;

 private:
  EventLoopConnection(std::shared_ptr<Core> core, const Options& options)
      : core_(std::move(core)), options_(options) {}

  std::shared_ptr<Core> core_;
  const Options options_;
};

}  // namespace sluice::redis
