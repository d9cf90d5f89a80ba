// ModelServerProcess: the real `sluice model-server` binary, started for one
// test (test support; not part of sluice_modelserver).
//
// fork/execs `<binary> model-server --port 0 <args...>` with stdout on a pipe
// and stderr inherited, waits (bounded) for
//   sluice-model-server: listening on http://127.0.0.1:PORT
// then keeps copying the child's stdout to stderr on a thread. The child gets
// PR_SET_PDEATHSIG(SIGKILL). The destructor SIGKILLs and reaps the child —
// only the child this object started. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace sluice::modelserver::testing {

class ModelServerProcess {
 public:
  ModelServerProcess(std::string binary_path, std::vector<std::string> args)
      : binary_path_(std::move(binary_path)), args_(std::move(args)) {}
  ~ModelServerProcess();
  ModelServerProcess(const ModelServerProcess&) = delete;
  ModelServerProcess& operator=(const ModelServerProcess&) = delete;

  // Errors: fork/exec failed, the child exited or did not report its port in
  // `timeout` (it is then killed).
  Status Start(std::chrono::milliseconds timeout = std::chrono::milliseconds(15'000));
  // SIGKILLs and reaps the child now (a crashed server); idempotent.
  void Kill();
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string binary_path_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  std::thread forwarder_;
};

}  // namespace sluice::modelserver::testing
