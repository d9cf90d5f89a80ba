// RedisClient: what Sluice's Redis users need from "a Redis" — queue a
// command or a script with a callback, or wait for its reply; a state and
// counters; a second client to the same place for blocking commands.
//
// Two implementations: RedisConnection (one server: a primary, optionally
// with replicas behind it) and RedisClusterClient (Redis Cluster: each
// command goes to the master serving its first key's hash slot). Scripts
// touch one hash slot each (keys.h), so both run every script unchanged.
//
// Reply contract (both): `done` runs exactly once, with the reply (Redis
// error replies are replies, reply.h) or a non-OK status — kUnavailable
// when the server (or the slot's master) cannot be reached now. Callbacks
// run on a connection thread, or inline in Submit()/RunScript() when the
// command fails at once; they must not block and must not call Call() /
// CallScript(). Thread-safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "redis/lua_script.h"
#include "redis/reply.h"

namespace sluice::redis {

class RedisClient {
 public:
  enum class State {
    // Before the first attempt ended: a RedisConnection queues submissions,
    // a RedisClusterClient (no slot map yet) fails them with kUnavailable.
    kConnecting,
    kUp,    // connected (a cluster: every slot has a reachable master)
    kDown,  // failed; reconnecting in the background
  };

  // Counters since creation (monotonic; read with relaxed ordering). A
  // cluster client sums its node connections'.
  struct Stats {
    uint64_t commands_sent = 0;        // commands written to a server
    uint64_t pipelines = 0;            // round trips (writes of queued commands)
    uint64_t error_replies = 0;        // Redis "-ERR ..." replies delivered
    uint64_t io_errors = 0;            // connections lost or refused
    uint64_t reconnects = 0;           // successful connects after the first
    uint64_t rejected_while_down = 0;  // submissions failed at once (down or full)
    uint64_t scripts_reloaded = 0;     // NOSCRIPT replies answered by SCRIPT LOAD
    uint64_t callback_exceptions = 0;  // exceptions caught from callbacks
    uint64_t redirects = 0;            // MOVED / ASK replies followed (cluster)
    uint64_t slot_map_refreshes = 0;   // CLUSTER SLOTS reads that changed the map
  };

  using ReplyCallback = std::function<void(ReplyResult)>;

  virtual ~RedisClient() = default;

  // Queues one command; never blocks. REQUIRES: !argv.empty().
  virtual void Submit(std::vector<std::string> argv, ReplyCallback done) = 0;
  // EVALSHA `script` with `keys` and `args`; NOSCRIPT is answered by
  // loading the script and retrying once.
  virtual void RunScript(const LuaScript& script, std::vector<std::string> keys,
                         std::vector<std::string> args, ReplyCallback done) = 0;

  // Blocking forms, for callers that may wait one round trip (never from a
  // callback). They wait at most reply_wait_limit().
  virtual ReplyResult Call(std::vector<std::string> argv) = 0;
  virtual ReplyResult CallScript(const LuaScript& script, std::vector<std::string> keys,
                                 std::vector<std::string> args) = 0;

  // Blocks until the state is kUp or `timeout` passed; true when up.
  virtual bool WaitUntilUp(std::chrono::milliseconds timeout) = 0;
  virtual State state() const = 0;
  virtual Stats stats() const = 0;
  // The longest a blocking call waits for its reply (connect + two command
  // timeouts + 1 s); callers that wait on the async forms use the same.
  virtual std::chrono::milliseconds reply_wait_limit() const = 0;

  // A new client to the same server(s), for blocking commands (BLPOP): no
  // idle health checks, a command timeout of at least `command_timeout_ms`,
  // the client name with `name_suffix` appended.
  virtual Result<std::unique_ptr<RedisClient>> NewBlockingClient(
      const std::string& name_suffix, int64_t command_timeout_ms) const = 0;
};

// Runs `start` with a callback and waits up to `limit` for its reply
// (kUnavailable after). The wait behind every Call()/CallScript().
ReplyResult WaitForReply(const std::function<void(RedisClient::ReplyCallback)>& start,
                         std::chrono::milliseconds limit);

}  // namespace sluice::redis
