// SluiceProcess: the real `sluice serve` binary, started for one test.
//
// Writes the given YAML to a temporary file, fork/execs
//   <binary_path> serve --config <file> --port 0 <extra_args...>
// with stdout on a pipe, stderr inherited (the server's logs show up in the
// test's output), no other descriptor inherited, no signal blocked, and waits (bounded by
// ready_timeout) for the line
//   sluice: listening on http://127.0.0.1:PORT
// and reads the admin port from "sluice: admin on http://HOST:PORT" when the
// server prints that line before it. Lines printed before it are copied to
// stderr; after it a background thread keeps copying stdout to stderr so the
// child can never block on a full pipe.
//
// Ownership: the object owns the child process and the temporary file. The
// destructor SIGKILLs the child if it is still running, reaps it and removes
// the file. Only the child this object started is ever signalled. On Linux the
// child also gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves no server
// behind.
//
// Thread-compatible: call from one thread (the test's).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace sluice::testing {

struct SluiceProcessOptions {
  // Path of the `sluice` executable (tests pass the SLUICE_BINARY definition).
  std::string binary_path;
  // Contents of the config file passed with --config.
  std::string config_yaml;
  // The subcommand: "serve", or "gateway" / "worker" (scale-out; both print
  // the same "listening" line).
  std::string subcommand = "serve";
  // Appended after `<subcommand> --config FILE --port 0`.
  std::vector<std::string> extra_args;
  // How long Start() waits for the "listening" line.
  std::chrono::milliseconds ready_timeout{15'000};
  // When set, the child's stderr (its log) is appended to this file instead
  // of the test's stderr, for tests that read what the server logged.
  std::string stderr_path;
  // When the hard limit is > 0, the child's RLIMIT_NOFILE is set to these
  // before exec (as `ulimit -Sn S -Hn H` would); the server may raise its soft
  // limit up to the hard one, no further.
  uint64_t open_files_soft_limit = 0;
  uint64_t open_files_hard_limit = 0;
};

class SluiceProcess {
 public:
  explicit SluiceProcess(SluiceProcessOptions options);
  ~SluiceProcess();

  SluiceProcess(const SluiceProcess&) = delete;
  SluiceProcess& operator=(const SluiceProcess&) = delete;

  // Starts the child and blocks until it reports its port. Errors: the config
  // file could not be written, fork/exec failed, the child exited before it
  // was ready (the message has its exit status), or ready_timeout passed (the
  // child is then killed). REQUIRES: not started yet.
  Status Start();

  // The port parsed from the "listening" line. REQUIRES: Start() returned OK.
  uint16_t port() const { return port_; }
  // The admin listener's port, or 0 when the server announced none.
  uint16_t admin_port() const { return admin_port_; }
  // The child's pid, or -1 before Start().
  pid_t pid() const { return pid_; }
  // The config file it was started with (a reload re-reads it). REQUIRES:
  // Start() was called.
  const std::string& config_path() const { return config_path_; }

  // Sends `sig` to the child. Returns false when there is no running child.
  bool Terminate(int sig = SIGTERM);

  // True while the child has not exited (reaps it without blocking if it has).
  bool running();

  // Waits up to `timeout` for the child to exit. Returns its exit code (the
  // exit status, or 128 + signal number when a signal ended it), or nullopt
  // if it is still running at the deadline. Returns the cached code when it
  // has already been reaped. Polls waitpid(WNOHANG) every few milliseconds.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);

 private:
  void StartForwarding();
  void KillAndReap();

  SluiceProcessOptions options_;
  std::string config_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // read end of the child's stdout; owned by forwarder_ after Start
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::optional<int> exit_code_;
  std::thread forwarder_;
};

}  // namespace sluice::testing
