#include "testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

using SteadyTime = std::chrono::steady_clock;

constexpr const char* kRunuser = "/usr/sbin/runuser";
constexpr int kStartAttempts = 3;  // a picked port may be taken before the server binds it

// A port the kernel considers free on 127.0.0.1 now. Never one of the
// well-known ports of shared services (5432, 6379, 80).
Result<uint16_t> PickFreePort() {
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port != 0 && port != 5432 && port != 6379 && port != 80) return port;
  }
  return Internal("no free loopback port");
}

}  // namespace

PostgresServer::PostgresServer(PostgresServerOptions options) : options_(std::move(options)) {}

PostgresServer::~PostgresServer() {
  if (running_ && !Stop().ok()) {
    PgCtl({"stop", "-m", "immediate"});  // our data directory only
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::LogTail(const std::string& path) const {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  constexpr size_t kTail = 2'000;
  return all.size() > kTail ? all.substr(all.size() - kTail) : all;
}

Status PostgresServer::Run(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<std::string> full;
  if (::geteuid() == 0) full = {kRunuser, "-u", options_.run_as_user, "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  for (auto& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  const auto deadline = SteadyTime::now() + options_.command_timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Internal(std::string("waitpid: ") + std::strerror(errno));
    if (SteadyTime::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return DeadlineExceeded(full[0] + " " + argv[0] + " ran past its timeout");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string how = WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  return Internal(argv[0] + " " + how + ":\n" + LogTail(log_path));
}

Status PostgresServer::InitCluster() {
  std::string tmpl = "/tmp/sluice-pg-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Internal(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = tmpl;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam(options_.run_as_user.c_str());
    if (pw == nullptr) return Internal("no user '" + options_.run_as_user + "' to run PostgreSQL");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return Internal("chown " + dir_ + ": " + std::strerror(errno));
    }
  }
  return Run({options_.bin_dir + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U", "postgres",
              "--no-sync", "--no-locale", "-E", "UTF8"},
             dir_ + "/initdb.log");
}

Status PostgresServer::PgCtl(const std::vector<std::string>& args) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(options_.command_timeout);
  std::vector<std::string> argv = {options_.bin_dir + "/pg_ctl",
                                   "-D",
                                   dir_ + "/data",
                                   "-w",
                                   "-t",
                                   std::to_string(std::max<int64_t>(1, secs.count() - 1))};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, dir_ + "/pg_ctl.log");
}

Status PostgresServer::StartOnce() {
  const std::string server_options = "-p " + std::to_string(port_) + " -k " + dir_ +
                                     " -c listen_addresses=127.0.0.1 -c fsync=off"
                                     " -c full_page_writes=off -c synchronous_commit=off";
  Status s = PgCtl({"-l", dir_ + "/server.log", "-o", server_options, "start"});
  if (!s.ok()) {
    return Internal(s.message() + "\nserver log:\n" + LogTail(dir_ + "/server.log"));
  }
  return s;
}

Status PostgresServer::Start() {
  if (running_) return Status::Ok();
  if (dir_.empty()) {
    if (Status s = InitCluster(); !s.ok()) return s;
  }
  Status s = Status::Ok();
  for (int attempt = 0; attempt < (started_once_ ? 1 : kStartAttempts); ++attempt) {
    if (!started_once_) {
      auto port = PickFreePort();
      if (!port.ok()) return port.status();
      port_ = *port;
    }
    s = StartOnce();
    if (s.ok()) {
      running_ = true;
      started_once_ = true;
      return s;
    }
    PgCtl({"stop", "-m", "immediate"});  // in case it came up after the wait gave up
  }
  return s;
}

Status PostgresServer::Stop() {
  if (!running_) return Status::Ok();
  Status s = PgCtl({"stop", "-m", "fast"});
  if (s.ok()) running_ = false;
  return s;
}

Status PostgresServer::Restart() {
  if (Status s = Stop(); !s.ok()) return s;
  return Start();
}

}  // namespace sluice::testing
