#include "testing/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A port the kernel considers free right now (bound then released).
Result<uint16_t> PickFreePort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) return Internal(std::string("bind: ") + std::strerror(errno));
    uint16_t port = ntohs(addr.sin_port);
    if (port != 6379) return port;
  }
  return Internal("no free loopback port");
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {}

RedisServer::~RedisServer() {
  Stop();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

Status RedisServer::Start() {
  if (running()) return Internal("RedisServer::Start: already running");
  Status last = Internal("redis-server did not start");
  // A port picked free may be taken before the child binds it; try another.
  for (int attempt = 0; attempt < 3; ++attempt) {
    Result<uint16_t> port = PickFreePort();
    if (!port.ok()) return port.status();
    port_ = *port;
    if (options_.cluster_enabled) {
      Result<uint16_t> bus = PickFreePort();
      if (!bus.ok()) return bus.status();
      bus_port_ = *bus;
      if (dir_.empty()) {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "sluice-redis-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
          return Internal(std::string("mkdtemp: ") + std::strerror(errno));
        }
        dir_ = tmpl;
      }
    }
    last = Launch();
    if (last.ok()) return last;
  }
  return last;
}

Status RedisServer::Restart() {
  Stop();
  if (port_ == 0) return Start();
  return Launch();
}

Status RedisServer::Launch() {
  const std::string port = std::to_string(port_);
  std::vector<std::string> args = {
      options_.binary_path, "--port", port,          "--bind", "127.0.0.1",  "--save", "",
      "--appendonly",       "no",     "--daemonize", "no",     "--loglevel", "warning"};
  if (options_.cluster_enabled) {
    const std::vector<std::string> cluster = {"--cluster-enabled",
                                              "yes",
                                              "--cluster-config-file",
                                              "nodes.conf",
                                              "--cluster-port",
                                              std::to_string(bus_port_),
                                              "--cluster-node-timeout",
                                              std::to_string(options_.cluster_node_timeout_ms),
                                              "--dir",
                                              dir_};
    args.insert(args.end(), cluster.begin(), cluster.end());
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, STDOUT_FILENO);
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = child;

  const auto deadline = Clock::now() + options_.ready_timeout;
  for (int i = 0; i < 100'000 && Clock::now() < deadline; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Unavailable("redis-server exited before answering PING (port " + port + ")");
    }
    if (Ping()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Stop();
  return DeadlineExceeded("redis-server did not answer PING within " +
                          std::to_string(options_.ready_timeout.count()) + " ms");
}

bool RedisServer::Ping() const {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port_);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    static constexpr std::string_view kPing = "PING\r\n";
    if (::send(fd, kPing.data(), kPing.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(kPing.size())) {
      pollfd pfd{fd, POLLIN, 0};
      char buf[64];
      if (::poll(&pfd, 1, 500) == 1) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        const std::string_view reply(buf, n > 0 ? static_cast<size_t>(n) : 0);
        ok = reply.starts_with("+PONG") || reply.starts_with("-NOAUTH");
      }
    }
  }
  ::close(fd);
  return ok;
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::Pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::Resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a paused server handles the SIGTERM
  const auto deadline = Clock::now() + options_.stop_timeout;
  for (int i = 0; i < 100'000; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace sluice::testing
