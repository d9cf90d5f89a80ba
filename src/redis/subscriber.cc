#include "redis/subscriber.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/thread_name.h"
#include "redis/connection.h"

namespace sluice::redis {
namespace {

using SteadyTime = std::chrono::steady_clock;

timeval ToTimeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// Appends a command and writes the whole output buffer (blocking, bounded by
// the context's timeout). False on an I/O error.
bool Send(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()) !=
      REDIS_OK) {
    return false;
  }
  int done = 0;
  for (int i = 0; i < 10'000 && done == 0; ++i) {
    if (redisBufferWrite(c, &done) != REDIS_OK) return false;
  }
  return done != 0;
}

std::string_view Str(const redisReply* r) {
  return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

}  // namespace

Result<std::unique_ptr<RedisSubscriber>> RedisSubscriber::Create(Options options) {
  if (options.host.empty()) return InvalidArgument("subscriber.host: must not be empty");
  if (options.port < 1 || options.port > 65535) {
    return InvalidArgument("subscriber.port: must be in 1..65535");
  }
  for (const auto& [host, port] : options.fallbacks) {
    if (host.empty() || port < 1 || port > 65535) {
      return InvalidArgument("subscriber.fallbacks: bad server '" + host + ":" +
                             std::to_string(port) + "'");
    }
  }
  if (options.channels.empty()) return InvalidArgument("subscriber.channels: must not be empty");
  if (options.connect_timeout_ms <= 0 || options.command_timeout_ms <= 0 ||
      options.health_check_interval_ms <= 0) {
    return InvalidArgument("subscriber: timeouts and health_check_interval_ms must be > 0");
  }
  if (options.reconnect_initial_backoff_ms <= 0 ||
      options.reconnect_max_backoff_ms < options.reconnect_initial_backoff_ms) {
    return InvalidArgument("subscriber: reconnect backoff must be > 0 and max >= initial");
  }
  if (!options.on_message) return InvalidArgument("subscriber.on_message: required");
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  std::unique_ptr<RedisSubscriber> s(new RedisSubscriber(std::move(options), wake_fd));
  s->thread_ = std::thread([p = s.get()] {
    SetCurrentThreadName("redis-sub");
    p->Run();
  });
  return s;
}

RedisSubscriber::RedisSubscriber(Options options, int wake_fd)
    : options_(std::move(options)), wake_fd_(wake_fd) {}

RedisSubscriber::~RedisSubscriber() {
  stopping_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

bool RedisSubscriber::WaitUntilSubscribed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return subscribed(); });
}

RedisSubscriber::Stats RedisSubscriber::stats() const {
  Stats s;
  s.messages = messages_.load(std::memory_order_relaxed);
  s.io_errors = io_errors_.load(std::memory_order_relaxed);
  s.resubscribes = resubscribes_.load(std::memory_order_relaxed);
  s.callback_exceptions = callback_exceptions_.load(std::memory_order_relaxed);
  return s;
}

void RedisSubscriber::SetSubscribed(bool value) {
  {
    std::lock_guard lock(mu_);
    subscribed_.store(value, std::memory_order_release);
  }
  cv_.notify_all();
}

template <typename Fn>
void RedisSubscriber::Guarded(Fn&& fn) {
  try {
    fn();
  } catch (...) {
    callback_exceptions_.fetch_add(1, std::memory_order_relaxed);
  }
}

void RedisSubscriber::Sleep(int64_t ms) {
  pollfd pfd{wake_fd_, POLLIN, 0};
  ::poll(&pfd, 1, static_cast<int>(ms));
}

void RedisSubscriber::Run() {
  int64_t backoff_ms = options_.reconnect_initial_backoff_ms;
  std::vector<std::pair<std::string, int>> servers = {{options_.host, options_.port}};
  servers.insert(servers.end(), options_.fallbacks.begin(), options_.fallbacks.end());
  size_t next = 0;
  while (!Stopping()) {
    const auto started = SteadyTime::now();
    const auto& [host, port] = servers[next];
    next = (next + 1) % servers.size();
    Session(host, port);
    if (context_ != nullptr) redisFree(context_);
    context_ = nullptr;
    SetSubscribed(false);
    if (Stopping()) break;
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    // A session that lasted a while was healthy: start the backoff afresh.
    if (SteadyTime::now() - started >
        std::chrono::milliseconds(options_.reconnect_max_backoff_ms)) {
      backoff_ms = options_.reconnect_initial_backoff_ms;
    }
    Sleep(backoff_ms);
    backoff_ms = std::min(2 * backoff_ms, options_.reconnect_max_backoff_ms);
  }
}

std::string RedisSubscriber::Session(const std::string& host, int port) {
  context_ = redisConnectWithTimeout(host.c_str(), port, ToTimeval(options_.connect_timeout_ms));
  if (context_ == nullptr) return "cannot allocate a hiredis context";
  if (context_->err != 0) return context_->errstr;
  redisSetTimeout(context_, ToTimeval(options_.command_timeout_ms));
  redisEnableKeepAlive(context_);
  if (std::string error; !Authenticate(context_, options_.username, options_.password, &error)) {
    return error;
  }
  std::vector<std::string> argv = {"SUBSCRIBE"};
  argv.insert(argv.end(), options_.channels.begin(), options_.channels.end());
  if (!Send(context_, argv)) return context_->errstr;

  size_t confirmed = 0;
  bool ping_outstanding = false;
  auto last_read = SteadyTime::now();
  auto ping_sent = last_read;
  while (!Stopping()) {
    const auto now = SteadyTime::now();
    int64_t wait_ms = options_.health_check_interval_ms;
    if (ping_outstanding) {
      const auto left = std::chrono::milliseconds(options_.command_timeout_ms) - (now - ping_sent);
      wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
      if (wait_ms <= 0) return "no answer to PING";
    }
    pollfd fds[2] = {{context_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(wait_ms, 1)));
    if (ready < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
    if (Stopping()) return {};
    if (ready <= 0 || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      if (!ping_outstanding && SteadyTime::now() - last_read >=
                                   std::chrono::milliseconds(options_.health_check_interval_ms)) {
        if (!Send(context_, {"PING"})) return context_->errstr;
        ping_outstanding = true;
        ping_sent = SteadyTime::now();
      }
      continue;
    }
    if (redisBufferRead(context_) != REDIS_OK) return context_->errstr;
    last_read = SteadyTime::now();
    ping_outstanding = false;
    // Everything parsed from this read; bounded by the bytes read.
    for (int i = 0; i < 1'000'000; ++i) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return context_->errstr;
      if (raw == nullptr) break;
      auto* r = static_cast<redisReply*>(raw);
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        const std::string_view kind = Str(r->element[0]);
        if (kind == "message") {
          std::string channel(Str(r->element[1]));
          std::string payload(Str(r->element[2]));
          messages_.fetch_add(1, std::memory_order_relaxed);
          Guarded([&] { options_.on_message(channel, std::move(payload)); });
        } else if (kind == "subscribe" && ++confirmed == options_.channels.size()) {
          SetSubscribed(true);
          if (resubscribe_seen_) resubscribes_.fetch_add(1, std::memory_order_relaxed);
          resubscribe_seen_ = true;
          if (options_.on_subscribed) Guarded([&] { options_.on_subscribed(); });
        }
      }
      freeReplyObject(r);
    }
  }
  return {};
}

}  // namespace sluice::redis
