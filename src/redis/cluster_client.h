// RedisClusterClient: a RedisClient (client.h) for Redis Cluster.
//
// Keeps the cluster's slot map (CLUSTER SLOTS: which master serves each of
// the 16384 hash slots, hash_slot.h) and one pipelined RedisConnection per
// master. A command goes to the master of its first key's slot (a script:
// its first KEY; keyless commands such as PING, INFO or PUBLISH: any
// master that is up), so N concurrent callers still cost one round trip
// per master.
//
// Redirects. `MOVED slot host:port` (the slot has a new owner: resharding,
// a failover the map had not seen yet) updates that slot at once, re-sends
// the command there and schedules a full map refresh; `ASK slot host:port`
// (a slot being migrated) re-sends it once to that node after ASKING,
// without changing the map. At most max_redirects per command; then, and
// for TRYAGAIN / CLUSTERDOWN, the caller gets kUnavailable.
//
// Failover. A master that stops answering fails its commands with
// kUnavailable at once (its connection is down; a gateway answers 503) and
// schedules a refresh. A background thread re-reads the map from any node
// that answers, at most once per refresh_interval_ms while something is
// wrong and every periodic_refresh_ms otherwise; when the replica has been
// promoted (after the cluster's node timeout) the map names it and commands
// flow again. Connections to nodes that no longer serve any slot are
// closed by that thread.
//
// Before the first slot map is read (state kConnecting) commands fail at
// once with kUnavailable (a RedisConnection would queue them): wait with
// WaitUntilUp() first.
//
// Thread-safety: thread-safe. Callbacks: as RedisConnection's (they run on
// a node connection's thread, or inline; Call()/CallScript() from one fail
// with kInternal). Lifetime: the destructor stops
// the refresh thread and closes every node connection, failing what they
// still hold with kUnavailable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "redis/client.h"
#include "redis/connection.h"

namespace sluice::redis {

class RedisClusterClient final : public RedisClient {
 public:
  struct Options {
    // "host:port" of cluster nodes to read the first slot map from (any
    // node will do; list several in case one is down). Non-empty.
    std::vector<std::string> seeds;
    // Every node connection's options: timeouts, AUTH, client name
    // (host and port are taken from the slot map).
    RedisConnection::Options node;
    // Shortest time between two slot-map reads; > 0.
    int64_t refresh_interval_ms = 100;
    // Slot map re-read this often while all is well; >= refresh_interval_ms.
    int64_t periodic_refresh_ms = 5'000;
    // Redirects followed per command before it fails; 1..16.
    int max_redirects = 5;
  };

  // Validates `options` and starts the refresh thread, which reads the map
  // in the background (see WaitUntilUp). Errors: kInvalidArgument naming
  // the field (seeds must parse as host:port).
  static Result<std::unique_ptr<RedisClusterClient>> Create(Options options);
  ~RedisClusterClient() override;

  RedisClusterClient(const RedisClusterClient&) = delete;
  RedisClusterClient& operator=(const RedisClusterClient&) = delete;

  void Submit(std::vector<std::string> argv, ReplyCallback done) override;
  void RunScript(const LuaScript& script, std::vector<std::string> keys,
                 std::vector<std::string> args, ReplyCallback done) override;
  ReplyResult Call(std::vector<std::string> argv) override;
  ReplyResult CallScript(const LuaScript& script, std::vector<std::string> keys,
                         std::vector<std::string> args) override;
  bool WaitUntilUp(std::chrono::milliseconds timeout) override;
  // kConnecting until the first map was read; kUp while every slot has a
  // master whose connection is not down; else kDown.
  State state() const override;
  Stats stats() const override;
  std::chrono::milliseconds reply_wait_limit() const override;
  Result<std::unique_ptr<RedisClient>> NewBlockingClient(const std::string& name_suffix,
                                                         int64_t command_timeout_ms) const override;

  // "host:port" of the master serving `slot` in the current map; empty
  // when none does. For tests and diagnostics.
  std::string MasterOf(int slot) const;

 private:
  struct Command;
  using NodePtr = std::shared_ptr<RedisConnection>;

  explicit RedisClusterClient(Options options);

  void Dispatch(const std::shared_ptr<Command>& command, const NodePtr& node, bool asking);
  void OnReply(const std::shared_ptr<Command>& command, ReplyResult reply);
  // The node for `command` by the current map; nullptr when unknown.
  NodePtr Route(const Command& command);
  // The connection to `address`, opened when new. REQUIRES: mu_ held.
  NodePtr NodeLocked(const std::string& address);
  void RequestRefresh();
  void RefreshLoop();
  // Reads CLUSTER SLOTS from the first node that answers and installs the
  // map; false when none did.
  bool Refresh();

  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;            // refresh wanted, map changed, or stopping
  std::vector<int> slot_node_;            // GUARDED_BY(mu_); slot -> index into addresses_, -1
  std::vector<std::string> addresses_;    // GUARDED_BY(mu_); masters in the map
  std::map<std::string, NodePtr> nodes_;  // GUARDED_BY(mu_); address -> connection
  std::vector<NodePtr> retired_;          // GUARDED_BY(mu_); closed by the refresh thread
  bool map_read_ = false;                 // GUARDED_BY(mu_)
  bool refresh_wanted_ = false;           // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};     // set under mu_ (for cv_)
  Stats retired_stats_;                   // GUARDED_BY(mu_); counters of closed nodes

  std::atomic<uint64_t> redirects_{0};
  std::atomic<uint64_t> refreshes_{0};
  std::thread refresh_thread_;  // last
};

}  // namespace sluice::redis
