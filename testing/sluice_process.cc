#include "testing/sluice_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kReadyPrefix = "sluice: listening on http://";
constexpr std::string_view kAdminPrefix = "sluice: admin on http://";

void WriteAllToStderr(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// Decodes a waitpid() status as a shell would: the exit status, or 128 + signal.
int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Port from "<prefix>HOST:PORT", or 0 if `line` is not that.
uint16_t ParsePortLine(std::string_view line, std::string_view prefix) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (!line.starts_with(prefix)) return 0;
  size_t colon = line.rfind(':');
  if (colon == std::string_view::npos || colon < prefix.size()) return 0;
  std::string_view digits = line.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value == 0 || value > 65535) {
    return 0;
  }
  return static_cast<uint16_t>(value);
}

Result<std::string> WriteTempConfig(const std::string& yaml) {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/sluice-it-XXXXXX.yaml";
  int fd = ::mkstemps(path.data(), 5);
  if (fd < 0) return Internal("mkstemps(" + path + "): " + std::strerror(errno));
  std::string_view rest = yaml;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status error = Internal("write(" + path + "): " + std::strerror(errno));
      ::close(fd);
      ::unlink(path.c_str());
      return error;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::close(fd);
  return path;
}

}  // namespace

SluiceProcess::SluiceProcess(SluiceProcessOptions options) : options_(std::move(options)) {}

SluiceProcess::~SluiceProcess() {
  KillAndReap();
  if (forwarder_.joinable()) {
    forwarder_.join();
  } else if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
  }
  if (!config_path_.empty()) ::unlink(config_path_.c_str());
}

Status SluiceProcess::Start() {
  if (pid_ != -1) return Internal("SluiceProcess::Start called twice");
  Result<std::string> path = WriteTempConfig(options_.config_yaml);
  if (!path.ok()) return path.status();
  config_path_ = *path;

  // Everything the child needs is built before fork(): only async-signal-safe
  // calls are allowed between fork() and exec() in a threaded process.
  std::vector<std::string> args = {
      options_.binary_path, options_.subcommand, "--config", config_path_, "--port", "0"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  static constexpr char kExecFailed[] = "sluice_process: exec failed\n";

  int log_fd = -1;
  if (!options_.stderr_path.empty()) {
    log_fd = ::open(options_.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return Internal("open(" + options_.stderr_path + "): " + std::strerror(errno));
    }
  }
  const rlimit files{options_.open_files_soft_limit, options_.open_files_hard_limit};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    if (log_fd >= 0) ::close(log_fd);
    return Internal(std::string("pipe2: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    if (log_fd >= 0) ::close(log_fd);
    return Internal(std::string("fork: ") + std::strerror(errno));
  }
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // The server must see signals as a shell would start it: nothing blocked,
    // SIGPIPE at its default, and none of the test's sockets inherited (a
    // socket kept open in the child would hide the test closing it).
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction default_action = {};
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &default_action, nullptr);
    if (::dup2(fds[1], STDOUT_FILENO) < 0) ::_exit(127);
    if (log_fd >= 0 && ::dup2(log_fd, STDERR_FILENO) < 0) ::_exit(127);
    if (files.rlim_max > 0 && ::setrlimit(RLIMIT_NOFILE, &files) != 0) ::_exit(127);
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    ::execv(argv[0], argv.data());
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  pid_ = child;
  ::close(fds[1]);
  if (log_fd >= 0) ::close(log_fd);
  stdout_fd_ = fds[0];

  const auto deadline = Clock::now() + options_.ready_timeout;
  std::string pending;
  char chunk[4096];
  while (port_ == 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      KillAndReap();
      return DeadlineExceeded("sluice did not print its listening line within " +
                              std::to_string(options_.ready_timeout.count()) + " ms");
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Internal(std::string("poll: ") + std::strerror(errno));
    if (ready == 0) continue;
    ssize_t n = ::read(stdout_fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // stdout closed: the child is exiting without having become ready
      WriteAllToStderr(pending);
      std::optional<int> code = WaitExit(std::chrono::milliseconds(5'000));
      return Unavailable("sluice exited before it was ready (exit code " +
                         (code ? std::to_string(*code) : std::string("unknown")) + ")");
    }
    pending.append(chunk, static_cast<size_t>(n));
    size_t newline;
    while (port_ == 0 && (newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      port_ = ParsePortLine(line, kReadyPrefix);
      if (uint16_t admin = ParsePortLine(line, kAdminPrefix); admin != 0) admin_port_ = admin;
      if (port_ == 0) WriteAllToStderr(line + "\n");
    }
  }
  WriteAllToStderr(pending);
  StartForwarding();
  return Status::Ok();
}

void SluiceProcess::StartForwarding() {
  int fd = stdout_fd_;
  stdout_fd_ = -1;
  forwarder_ = std::thread([fd] {
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: every writer (the child) is gone
      WriteAllToStderr(std::string_view(chunk, static_cast<size_t>(n)));
    }
    ::close(fd);
  });
}

bool SluiceProcess::Terminate(int sig) {
  if (!running()) return false;
  return ::kill(pid_, sig) == 0;
}

bool SluiceProcess::running() {
  if (pid_ <= 0 || exit_code_.has_value()) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  if (r < 0 && errno != EINTR) {  // not our child any more; nothing to wait for
    exit_code_ = -1;
    return false;
  }
  return true;
}

std::optional<int> SluiceProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  constexpr int kMaxPolls = 1'000'000;  // the deadline ends the loop; this is a backstop
  for (int i = 0; i < kMaxPolls; ++i) {
    if (!running()) return exit_code_;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::nullopt;
}

void SluiceProcess::KillAndReap() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  WaitExit(std::chrono::milliseconds(10'000));
}

}  // namespace sluice::testing
