#include "modelserver/model_server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string_view>

#include "common/thread_name.h"

namespace sluice::modelserver::testing {

namespace {
constexpr std::string_view kReady = "sluice-model-server: listening on http://";
}  // namespace

Status ModelServerProcess::Start(std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  std::vector<std::string> argv_strings{binary_path_, "model-server", "--port", "0"};
  argv_strings.insert(argv_strings.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  stdout_fd_ = fds[0];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string pending;
  while (port_ == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{stdout_fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return DeadlineExceeded("model-server did not report its port in time");
    }
    char buf[512];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n <= 0) return Internal("model-server exited before it was ready");
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      std::string_view line(pending.data(), nl);
      if (line.starts_with(kReady)) {
        port_ = static_cast<uint16_t>(std::stoi(std::string(line.substr(line.rfind(':') + 1))));
      }
    }
  }
  forwarder_ = std::thread([fd = stdout_fd_] {
    SetCurrentThreadName("ms-stdout");
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
      if (::write(STDERR_FILENO, buf, static_cast<size_t>(n)) < 0) break;
    }
  });
  return Status::Ok();
}

ModelServerProcess::~ModelServerProcess() { Kill(); }

void ModelServerProcess::Kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (forwarder_.joinable()) forwarder_.join();  // the pipe hits EOF once the child is gone
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
}

}  // namespace sluice::modelserver::testing
