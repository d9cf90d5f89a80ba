// RedisCluster: a real Redis Cluster on loopback for integration tests —
// `masters` masters with `replicas_per_master` replicas each (RedisServer in
// cluster mode), joined by `redis-cli --cluster create`.
//
// Start() launches the nodes, creates the cluster and waits, bounded by
// ready_timeout, until every node reports cluster_state:ok and knows every
// slot. Kill(i) crashes one node (SIGKILL); WaitUntilOk() then waits for the
// cluster to heal (a replica promoted after the node timeout). Cli() runs
// redis-cli against one node and returns its output (for CLUSTER commands
// in tests). The destructor stops every node it started.
//
// Thread-compatible: call from one thread (the test's).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "testing/redis_server.h"

namespace sluice::testing {

class RedisCluster {
 public:
  struct Options {
    int masters = 3;              // 3..16 (Redis Cluster's minimum is 3)
    int replicas_per_master = 1;  // 0..2
    // cluster-node-timeout: how long a silent master has before its
    // replica takes over.
    int node_timeout_ms = 1'000;
    std::chrono::milliseconds ready_timeout{30'000};
  };

  explicit RedisCluster(Options options);
  RedisCluster() : RedisCluster(Options{}) {}

  Status Start();

  size_t size() const { return nodes_.size(); }
  RedisServer& node(size_t i) { return *nodes_[i]; }
  // "127.0.0.1:<port>" of every node, in start order.
  std::vector<std::string> Addresses() const;
  // The index of the node listening on `port`; -1 when none.
  int IndexOfPort(uint16_t port) const;

  // Crashes node `i` (SIGKILL).
  void Kill(size_t i) { nodes_[i]->Kill(); }

  // Until every running node reports cluster_state:ok and the same full
  // slot coverage with only running masters, and every running replica's
  // link to its master is up; false after `timeout`.
  bool WaitUntilOk(std::chrono::milliseconds timeout);

  // `redis-cli -p <port of node i> args...`: its standard output, or an
  // error when it could not run or exited non-zero.
  Result<std::string> Cli(size_t i, const std::vector<std::string>& args) const;

 private:
  Options options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace sluice::testing
