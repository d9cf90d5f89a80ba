// RedisServer: a real redis-server on a free loopback port, for integration
// tests of the Redis adapters.
//
// Start() picks a free port (never 6379), fork/execs
//   redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
//                --daemonize no
// (nothing persisted: a Restart() comes back empty, like a Redis that lost
// its memory) and waits, bounded by ready_timeout, until the server answers
// PING. Stop() sends SIGTERM to the child it started and reaps it (SIGKILL
// after stop_timeout); Restart() starts a new child on the same port.
//
// Ownership: the object owns the child. The destructor stops it. Only the
// process this object started is ever signalled; the child also gets
// PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves no server behind.
//
// Thread-compatible: call from one thread (the test's).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::testing {

struct RedisServerOptions {
  // The redis-server executable.
  std::string binary_path = "redis-server";
  // How long Start()/Restart() wait for the first PONG.
  std::chrono::milliseconds ready_timeout{10'000};
  // How long Stop() waits after SIGTERM before it sends SIGKILL.
  std::chrono::milliseconds stop_timeout{5'000};
  // More command-line configuration, e.g. {"--requirepass", "secret"}
  // (readiness then counts a NOAUTH answer to PING as up).
  std::vector<std::string> extra_args;
  // Redis Cluster mode: --cluster-enabled yes, a cluster bus on a second
  // free port, nodes.conf in a temporary directory of its own (kept across
  // Restart(), so the node rejoins as itself; removed by the destructor).
  bool cluster_enabled = false;
  int cluster_node_timeout_ms = 1'000;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Picks a free port and starts the server; blocks until it answers PING.
  // Errors: no free port, fork/exec failed, the child exited early, or
  // ready_timeout passed (the child is then killed). REQUIRES: not running.
  Status Start();

  // SIGTERM, then waitpid (SIGKILL after stop_timeout). No-op when stopped.
  void Stop();
  // SIGKILL and waitpid: a crash (no shutdown, no goodbye to the cluster).
  void Kill();
  // SIGSTOP / SIGCONT: a server that hangs (its connections stay open and
  // unanswered) and then answers again with its data. No-op when stopped.
  void Pause();
  void Resume();

  // Stop() then start again on the same port (empty data set).
  Status Restart();

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  Status Launch();  // starts on port_ and waits for PONG
  bool Ping() const;

  RedisServerOptions options_;
  uint16_t port_ = 0;
  uint16_t bus_port_ = 0;  // cluster mode
  std::string dir_;        // cluster mode: working directory (nodes.conf)
  pid_t pid_ = -1;
};

}  // namespace sluice::testing
