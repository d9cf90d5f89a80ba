#include "redis/connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "common/thread_name.h"

namespace sluice::redis {
namespace {

using SteadyTime = std::chrono::steady_clock;

timeval ToTimeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// Sends one command on a connected context and reads its reply (used while
// connecting, before the pipeline runs). False on an I/O or error reply.
bool CommandOk(redisContext* c, const std::vector<std::string>& argv, std::string* error) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (raw == nullptr) {
    *error = c->errstr;
    return false;
  }
  auto* reply = static_cast<redisReply*>(raw);
  const bool ok = reply->type != REDIS_REPLY_ERROR;
  if (!ok) *error = argv[0] + ": " + std::string(reply->str, reply->len);
  freeReplyObject(reply);
  return ok;
}

}  // namespace

bool Authenticate(redisContext* c, const std::string& username, const std::string& password,
                  std::string* error) {
  if (password.empty()) return true;
  std::vector<std::string> argv = {"AUTH"};
  if (!username.empty()) argv.push_back(username);
  argv.push_back(password);
  std::string detail;
  if (CommandOk(c, argv, &detail)) return true;
  // CommandOk's text is "AUTH: <server's reply>"; the reply never echoes
  // the password (WRONGPASS / ERR ...), the argv is not included.
  *error = "redis AUTH" + std::string(username.empty() ? "" : " as '" + username + "'") +
           " refused: " +
           detail.substr(detail.find(':') == std::string::npos ? 0 : detail.find(':') + 2);
  return false;
}

Result<std::unique_ptr<RedisConnection>> RedisConnection::Create(const Options& options) {
  if (Status s = Validate(options); !s.ok()) return s;
  std::unique_ptr<RedisConnection> connection(new RedisConnection(options));
  connection->thread_ = std::thread([c = connection.get()] {
    SetCurrentThreadName("redis-conn");
    c->Run();
  });
  return connection;
}

Status RedisConnection::Validate(const Options& options) {
  if (options.host.empty()) return InvalidArgument("redis.host: must not be empty");
  if (options.port < 1 || options.port > 65535) {
    return InvalidArgument("redis.port: must be in 1..65535, got " + std::to_string(options.port));
  }
  if (options.connect_timeout_ms <= 0)
    return InvalidArgument("redis.connect_timeout_ms: must be > 0");
  if (options.command_timeout_ms <= 0)
    return InvalidArgument("redis.command_timeout_ms: must be > 0");
  if (options.reconnect_initial_backoff_ms <= 0) {
    return InvalidArgument("redis.reconnect_initial_backoff_ms: must be > 0");
  }
  if (options.reconnect_max_backoff_ms < options.reconnect_initial_backoff_ms) {
    return InvalidArgument(
        "redis.reconnect_max_backoff_ms: must be >= reconnect_initial_backoff_ms");
  }
  if (options.health_check_interval_ms < 0) {
    return InvalidArgument("redis.health_check_interval_ms: must be >= 0");
  }
  if (options.max_queued_commands < 1)
    return InvalidArgument("redis.max_queued_commands: must be >= 1");
  if (options.max_pipeline_commands < 1) {
    return InvalidArgument("redis.max_pipeline_commands: must be >= 1");
  }
  return Status::Ok();
}

RedisConnection::RedisConnection(const Options& options) : options_(options) {}

RedisConnection::~RedisConnection() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RedisConnection::Submit(std::vector<std::string> argv, ReplyCallback done) {
  Enqueue(Pending{std::move(argv), std::move(done), false});
}

void RedisConnection::SubmitAsking(std::vector<std::string> argv, ReplyCallback done) {
  Enqueue(Pending{std::move(argv), std::move(done), true});
}

void RedisConnection::Enqueue(Pending pending) {
  const char* reason = nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      reason = "redis connection closed";
    } else if (state_.load(std::memory_order_relaxed) == State::kDown) {
      reason = "redis unavailable";
    } else if (queue_.size() >= options_.max_queued_commands) {
      reason = "redis command queue full";
    } else {
      queue_.push_back(std::move(pending));
    }
  }
  if (reason == nullptr) {
    work_cv_.notify_one();
    return;
  }
  counters_.rejected_while_down.fetch_add(1, std::memory_order_relaxed);
  Deliver(pending.done, Unavailable(std::string(reason) + " (" + options_.host + ":" +
                                    std::to_string(options_.port) + ")"));
}

void RedisConnection::RunScript(const LuaScript& script, std::vector<std::string> keys,
                                std::vector<std::string> args, ReplyCallback done) {
  {
    // A script seen for the first time is loaded in the same pipeline, just
    // ahead of its EVALSHA (queued under the same lock as the map insert, so
    // no EVALSHA of it can overtake the load). While down there is nothing
    // to queue: the reconnect loads every known script.
    std::lock_guard lock(mu_);
    if (scripts_.try_emplace(script.sha1(), script.body()).second && !stopping_ &&
        state_.load(std::memory_order_relaxed) != State::kDown) {
      queue_.push_back(Pending{{"SCRIPT", "LOAD", script.body()}, nullptr});
    }
  }
  auto argv = std::make_shared<std::vector<std::string>>();
  argv->reserve(3 + keys.size() + args.size());
  argv->push_back("EVALSHA");
  argv->push_back(script.sha1());
  argv->push_back(std::to_string(keys.size()));
  for (std::string& k : keys) argv->push_back(std::move(k));
  for (std::string& a : args) argv->push_back(std::move(a));
  std::vector<std::string> first = *argv;
  Submit(std::move(first), [this, argv, done = std::move(done)](ReplyResult reply) mutable {
    if (reply.ok() && reply->is_error() && reply->str.starts_with("NOSCRIPT")) {
      // The server lost its script cache (restart, SCRIPT FLUSH): load the
      // body and retry once; both go out in order on this connection.
      counters_.scripts_reloaded.fetch_add(1, std::memory_order_relaxed);
      std::string body;
      {
        std::lock_guard lock(mu_);
        body = scripts_[(*argv)[1]];
      }
      Submit({"SCRIPT", "LOAD", std::move(body)}, nullptr);
      Submit(std::move(*argv), std::move(done));
      return;
    }
    done(std::move(reply));
  });
}

ReplyResult WaitForReply(const std::function<void(RedisClient::ReplyCallback)>& start,
                         std::chrono::milliseconds limit) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<ReplyResult> reply;
  };
  auto slot = std::make_shared<Slot>();
  start([slot](ReplyResult reply) {
    std::lock_guard lock(slot->mu);
    slot->reply.emplace(std::move(reply));
    slot->cv.notify_all();
  });
  std::unique_lock lock(slot->mu);
  if (!slot->cv.wait_for(lock, limit, [&] { return slot->reply.has_value(); })) {
    return Unavailable("redis: no reply within " + std::to_string(limit.count()) + " ms");
  }
  return std::move(*slot->reply);
}

ReplyResult RedisConnection::Wait(const std::function<void(ReplyCallback)>& start) {
  if (std::this_thread::get_id() == thread_.get_id()) {
    return Internal("redis: blocking call from the connection's own thread");
  }
  return WaitForReply(start, reply_wait_limit());
}

std::chrono::milliseconds RedisConnection::ReplyWaitLimit(const Options& options) {
  return std::chrono::milliseconds(options.connect_timeout_ms + 2 * options.command_timeout_ms +
                                   1'000);
}

std::chrono::milliseconds RedisConnection::reply_wait_limit() const {
  return ReplyWaitLimit(options_);
}

Result<std::unique_ptr<RedisClient>> RedisConnection::NewBlockingConnection(
    const Options& options, const std::string& name_suffix, int64_t command_timeout_ms) {
  Options o = options;
  o.command_timeout_ms = std::max(o.command_timeout_ms, command_timeout_ms);
  o.health_check_interval_ms = 0;  // every call talks to it
  if (!o.client_name.empty()) o.client_name += name_suffix;
  Result<std::unique_ptr<RedisConnection>> c = Create(o);
  if (!c.ok()) return c.status();
  return std::unique_ptr<RedisClient>(std::move(c).value());
}

Result<std::unique_ptr<RedisClient>> RedisConnection::NewBlockingClient(
    const std::string& name_suffix, int64_t command_timeout_ms) const {
  return NewBlockingConnection(options_, name_suffix, command_timeout_ms);
}

ReplyResult RedisConnection::Call(std::vector<std::string> argv) {
  return Wait([&](ReplyCallback done) { Submit(std::move(argv), std::move(done)); });
}

ReplyResult RedisConnection::CallScript(const LuaScript& script, std::vector<std::string> keys,
                                        std::vector<std::string> args) {
  return Wait([&](ReplyCallback done) {
    RunScript(script, std::move(keys), std::move(args), std::move(done));
  });
}

bool RedisConnection::WaitUntilUp(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return state_cv_.wait_for(lock, timeout, [&] { return state() == State::kUp; });
}

RedisClient::Stats ConnectionCounters::Snapshot() const {
  RedisClient::Stats s;
  s.commands_sent = commands_sent.load(std::memory_order_relaxed);
  s.pipelines = pipelines.load(std::memory_order_relaxed);
  s.error_replies = error_replies.load(std::memory_order_relaxed);
  s.io_errors = io_errors.load(std::memory_order_relaxed);
  s.reconnects = reconnects.load(std::memory_order_relaxed);
  s.rejected_while_down = rejected_while_down.load(std::memory_order_relaxed);
  s.scripts_reloaded = scripts_reloaded.load(std::memory_order_relaxed);
  s.callback_exceptions = callback_exceptions.load(std::memory_order_relaxed);
  return s;
}

RedisConnection::Stats RedisConnection::stats() const { return counters_.Snapshot(); }

void RedisConnection::Deliver(ReplyCallback& done, ReplyResult reply) {
  if (!done) return;
  try {
    done(std::move(reply));
  } catch (...) {
    counters_.callback_exceptions.fetch_add(1, std::memory_order_relaxed);
  }
}

void RedisConnection::SetState(State state) {
  {
    std::lock_guard lock(mu_);
    state_.store(state, std::memory_order_release);
  }
  state_cv_.notify_all();
}

void RedisConnection::FailQueued(const Status& status) {
  std::deque<Pending> failed;
  {
    std::lock_guard lock(mu_);
    failed.swap(queue_);
  }
  for (Pending& p : failed) Deliver(p.done, status);
}

void RedisConnection::CloseContext() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

bool RedisConnection::Connect(std::string* error) {
  context_ = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                     ToTimeval(options_.connect_timeout_ms));
  if (context_ == nullptr) {
    *error = "cannot allocate a hiredis context";
    return false;
  }
  if (context_->err != 0) {
    *error = context_->errstr;
    CloseContext();
    return false;
  }
  redisSetTimeout(context_, ToTimeval(options_.command_timeout_ms));
  redisEnableKeepAlive(context_);
  bool ok = Authenticate(context_, options_.username, options_.password, error);
  ok = ok && (options_.client_name.empty() ||
              CommandOk(context_, {"CLIENT", "SETNAME", options_.client_name}, error));
  std::vector<std::string> bodies;
  {
    std::lock_guard lock(mu_);
    for (const auto& [sha, body] : scripts_) bodies.push_back(body);
  }
  for (size_t i = 0; ok && i < bodies.size(); ++i) {
    ok = CommandOk(context_, {"SCRIPT", "LOAD", bodies[i]}, error);
  }
  if (!ok) CloseContext();
  return ok;
}

bool RedisConnection::Pipeline(std::vector<Pending>& batch, std::string* error) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  size_t asking = 0;
  for (const Pending& p : batch) {
    if (p.asking) {
      redisAppendCommand(context_, "ASKING");
      ++asking;
    }
    ptrs.clear();
    lens.clear();
    for (const std::string& a : p.argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(context_, static_cast<int>(ptrs.size()), ptrs.data(), lens.data());
  }
  counters_.commands_sent.fetch_add(batch.size() + asking, std::memory_order_relaxed);
  counters_.pipelines.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < batch.size(); ++i) {
    void* raw = nullptr;
    bool ok = true;
    if (batch[i].asking) {  // ASKING's +OK (or error: the command's reply says more)
      ok = redisGetReply(context_, &raw) == REDIS_OK && raw != nullptr;
      if (ok) freeReplyObject(raw);
      raw = nullptr;
    }
    if (!ok || redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      *error = context_->err != 0 ? context_->errstr : "no reply";
      const Status status = Unavailable("redis connection lost (" + options_.host + ":" +
                                        std::to_string(options_.port) + "): " + *error);
      for (size_t j = i; j < batch.size(); ++j) Deliver(batch[j].done, status);
      return false;
    }
    auto* r = static_cast<redisReply*>(raw);
    RedisReply reply = RedisReply::FromHiredis(r);
    freeReplyObject(r);
    if (reply.is_error()) counters_.error_replies.fetch_add(1, std::memory_order_relaxed);
    Deliver(batch[i].done, std::move(reply));
  }
  return true;
}

void RedisConnection::Run() {
  int64_t backoff_ms = options_.reconnect_initial_backoff_ms;
  bool connected_before = false;
  auto last_activity = SteadyTime::now();
  const auto idle_wait = options_.health_check_interval_ms > 0
                             ? std::chrono::milliseconds(options_.health_check_interval_ms)
                             : std::chrono::milliseconds(60'000);
  // One iteration per connect attempt or pipeline; ends only when stopping.
  for (;;) {
    if (context_ == nullptr) {
      std::string error;
      if (Connect(&error)) {
        if (connected_before) counters_.reconnects.fetch_add(1, std::memory_order_relaxed);
        connected_before = true;
        backoff_ms = options_.reconnect_initial_backoff_ms;
        last_activity = SteadyTime::now();
        SetState(State::kUp);
      } else {
        counters_.io_errors.fetch_add(1, std::memory_order_relaxed);
        SetState(State::kDown);
        FailQueued(Unavailable("redis unavailable (" + options_.host + ":" +
                               std::to_string(options_.port) + "): " + error));
        std::unique_lock lock(mu_);
        work_cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; });
        if (stopping_) break;
        backoff_ms = std::min(2 * backoff_ms, options_.reconnect_max_backoff_ms);
        continue;
      }
    }

    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait_for(lock, idle_wait, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      const size_t n = std::min(queue_.size(), options_.max_pipeline_commands);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty()) {
      if (options_.health_check_interval_ms <= 0 ||
          SteadyTime::now() - last_activity <
              std::chrono::milliseconds(options_.health_check_interval_ms)) {
        continue;
      }
      batch.push_back(Pending{{"PING"}, nullptr});
    }
    std::string error;
    const bool ok = Pipeline(batch, &error);
    last_activity = SteadyTime::now();
    if (!ok) {
      counters_.io_errors.fetch_add(1, std::memory_order_relaxed);
      CloseContext();
      // Down first, so that no new command joins the queue, then fail it.
      SetState(State::kDown);
      FailQueued(Unavailable("redis connection lost (" + options_.host + ":" +
                             std::to_string(options_.port) + "): " + error));
      // The next iteration reconnects at once (a restarted server is back).
    }
  }
  CloseContext();
  FailQueued(Unavailable("redis connection closed"));
}

}  // namespace sluice::redis
