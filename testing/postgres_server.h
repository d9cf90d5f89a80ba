// PostgresServer: a real PostgreSQL 15 server, started for one test.
//
// Start() makes a temporary directory, runs initdb in it (trust auth, no
// fsync) and starts the server with pg_ctl on a free loopback port, its unix
// socket in the same directory. PostgreSQL refuses to run as root, so when
// the test runs as root the directory is given to the `postgres` user and
// every PostgreSQL program runs through `runuser -u postgres --`.
//
// Stop() stops it (pg_ctl stop -m fast); Start() after Stop() starts the same
// data directory on the same port again, so a client's URL stays valid;
// Restart() does both. The destructor stops the server and removes the
// directory. Only the server in this object's directory is ever stopped.
// If the test process dies without running the destructor, the server stays
// up; its directory is named /tmp/sluice-pg-*.
//
// Thread-compatible: call from one thread (the test's). Every call is bounded
// by the timeout in the options.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::testing {

struct PostgresServerOptions {
  // Where initdb, pg_ctl and postgres live.
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  // The account the server runs as when the test runs as root.
  std::string run_as_user = "postgres";
  // Bound on each initdb / pg_ctl call.
  std::chrono::milliseconds command_timeout{60'000};
};

class PostgresServer {
 public:
  explicit PostgresServer(PostgresServerOptions options = {});
  ~PostgresServer();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The first call creates the cluster and picks the port; later calls start
  // it again. Blocks until the server accepts connections. Errors (with the
  // tail of the server's or initdb's log): no free port, initdb or pg_ctl
  // failed or ran past command_timeout. No-op when already running.
  Status Start();
  // Stops the server, waiting until it has exited. No-op when not running.
  Status Stop();
  Status Restart();

  bool running() const { return running_; }
  // REQUIRES: Start() returned OK once.
  uint16_t port() const { return port_; }
  // "postgresql://postgres@127.0.0.1:PORT/<database>".
  std::string url(const std::string& database = "postgres") const;

 private:
  // Runs `argv` (as run_as_user when root) with output appended to
  // `log_path`. Errors when it fails to start, exits non-zero or times out.
  Status Run(const std::vector<std::string>& argv, const std::string& log_path);
  Status InitCluster();
  Status StartOnce();
  Status PgCtl(const std::vector<std::string>& args);
  std::string LogTail(const std::string& path) const;

  PostgresServerOptions options_;
  std::string dir_;  // the temporary directory; empty until Start()
  uint16_t port_ = 0;
  bool running_ = false;
  bool started_once_ = false;  // the port is fixed from then on
};

}  // namespace sluice::testing
