#include "redis/event_loop_connection.h"

#include <future>
#include <optional>
#include <utility>

#include <boost/asio/post.hpp>

#include "redis/event_loop_core.h"

namespace sluice::redis {

namespace asio = boost::asio;

void EventLoopConnection::Core::Deliver(ReplyCallback& done, ReplyResult reply) {
  if (!done) return;
  try {
    done(std::move(reply));
  } catch (...) {
    counters_.callback_exceptions.fetch_add(1, std::memory_order_relaxed);
  }
}

void EventLoopConnection::Core::SetState(State s) {
  {
    std::lock_guard lock(state_mu_);
    state_.store(s, std::memory_order_release);
  }
  state_cv_.notify_all();
}

EventLoopConnection::Stats EventLoopConnection::Core::stats() const { return counters_.Snapshot(); }

void EventLoopConnection::Core::Submit(std::vector<std::string> argv, ReplyCallback done) {
  Enqueue(Command{std::move(argv), std::move(done), Kind::kUser});
}

void EventLoopConnection::Core::Enqueue(Command c, const LuaScript* script) {
  const char* reason = nullptr;
  if (closing_.load(std::memory_order_acquire)) {
    reason = "redis connection closed";
  } else if (state() == State::kDown) {
    reason = "redis unavailable";
  } else if (queued_users_.fetch_add(1, std::memory_order_relaxed) >= o_.max_queued_commands) {
    queued_users_.fetch_sub(1, std::memory_order_relaxed);
    reason = "redis command queue full";
  }
  if (reason != nullptr) {
    if (script != nullptr && state() == State::kDown) {
      std::lock_guard lock(scripts_mu_);  // the reconnect's handshake loads it
      scripts_.try_emplace(script->sha1(), script->body());
    }
    counters_.rejected_while_down.fetch_add(1, std::memory_order_relaxed);
    Deliver(c.done, Unavailable(std::string(reason) + " (" + Where() + ")"));
    return;
  }
  // Everything passes through the inbox, in one order: a script's first
  // SCRIPT LOAD is pushed under the same lock as its registration, so no
  // EVALSHA of it (from any thread) can be queued ahead of the load.
  bool post = false;
  {
    std::lock_guard lock(inbox_mu_);
    post = inbox_.empty();
    if (script != nullptr) {
      std::lock_guard scripts_lock(scripts_mu_);
      if (scripts_.try_emplace(script->sha1(), script->body()).second) {
        inbox_.push_back(Command{{"SCRIPT", "LOAD", script->body()}, nullptr, Kind::kQuiet});
      }
    }
    inbox_.push_back(std::move(c));
  }
  if (strand_.running_in_this_thread()) {
    DrainInbox();  // what other threads queued first, then this
  } else if (post) {
    asio::post(strand_, [self = shared_from_this()] { self->DrainInbox(); });
  }
}

void EventLoopConnection::Core::DrainInbox() {
  if (phase_.load(std::memory_order_acquire) == kClosedUnstarted) return;  // failed by Close()
  std::vector<Command> commands;
  {
    std::lock_guard lock(inbox_mu_);
    commands.swap(inbox_);
  }
  for (Command& c : commands) Queue(std::move(c));
}

void EventLoopConnection::Core::RunScript(const LuaScript& script, std::vector<std::string> argv,
                                          ReplyCallback done) {
  // A NOSCRIPT reply (SCRIPT FLUSH, a restarted server that this connection
  // has not noticed) loads the body and retries once.
  auto wrapped = [self = shared_from_this(), sha = script.sha1(), argv,
                  done = std::move(done)](ReplyResult reply) mutable {
    if (reply.ok() && reply->is_error() && reply->str.starts_with("NOSCRIPT")) {
      self->counters_.scripts_reloaded.fetch_add(1, std::memory_order_relaxed);
      std::string body;
      {
        std::lock_guard lock(self->scripts_mu_);
        body = self->scripts_[sha];
      }
      self->Queue(Command{{"SCRIPT", "LOAD", std::move(body)}, nullptr, Kind::kQuiet});
      self->queued_users_.fetch_add(1, std::memory_order_relaxed);
      self->Queue(Command{std::move(argv), std::move(done), Kind::kUser});
      return;
    }
    if (done) done(std::move(reply));
  };
  Enqueue(Command{std::move(argv), std::move(wrapped), Kind::kUser}, &script);
}

void EventLoopConnection::Core::Queue(Command c) {
  const bool closed = closing_.load(std::memory_order_relaxed);
  if (closed || (c.kind == Kind::kUser && state() == State::kDown)) {
    if (c.kind == Kind::kUser) {
      queued_users_.fetch_sub(1, std::memory_order_relaxed);
      counters_.rejected_while_down.fetch_add(1, std::memory_order_relaxed);
    }
    Deliver(c.done,
            Unavailable(std::string(closed ? "redis connection closed" : "redis unavailable") +
                        " (" + Where() + ")"));
    return;
  }
  queued_.push_back(std::move(c));
  if (up_) WriteQueued();
}

void EventLoopConnection::Core::Close() {
  if (closing_.exchange(true, std::memory_order_acq_rel)) return;
  ++gen_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  for (asio::steady_timer* t : {&connect_timer_, &reply_timer_, &retry_timer_, &health_timer_}) {
    t->cancel();
  }
  writing_ = false;
  up_ = false;
  SetState(State::kDown);
  std::vector<Command> inbox;
  {
    std::lock_guard lock(inbox_mu_);
    inbox.swap(inbox_);
  }
  for (Command& c : inbox) queued_.push_back(std::move(c));
  FailAll(Unavailable("redis connection closed (" + Where() + ")"));
}

bool EventLoopConnection::Core::CloseIfUnstarted() {
  int unstarted = kUnstarted;
  if (!phase_.compare_exchange_strong(unstarted, kClosedUnstarted)) return false;
  // No handler of ours has run (Connect() is the strand's first and now
  // returns at once; DrainInbox() too): nothing else touches the state.
  Close();
  return true;
}

Result<std::unique_ptr<EventLoopConnection>> EventLoopConnection::Create(
    boost::asio::io_context& ioc, const Options& options) {
  if (Status s = RedisConnection::Validate(options); !s.ok()) return s;
  auto core = std::make_shared<Core>(ioc, options);
  asio::post(core->strand(), [core] { core->Connect(); });
  return std::unique_ptr<EventLoopConnection>(new EventLoopConnection(core, options));
}

EventLoopConnection::~EventLoopConnection() {
  if (core_->CloseIfUnstarted()) return;  // the loop never ran it
  if (core_->InLoop() || core_->ioc().stopped()) {
    // On the loop, or (the contract) after its run() returned: nothing
    // else runs our handlers.
    core_->Close();
    return;
  }
  // Another thread runs the loop: close there, and wait for it (callbacks
  // of failed commands may use what our owner destroys next). The bound
  // only guards against a loop stopped meanwhile, which breaks the contract.
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  asio::post(core_->strand(), [core = core_, closed] {
    core->Close();
    closed->set_value();
  });
  done.wait_for(reply_wait_limit());
}

void EventLoopConnection::Submit(std::vector<std::string> argv, ReplyCallback done) {
  core_->Submit(std::move(argv), std::move(done));
}

void EventLoopConnection::RunScript(const LuaScript& script, std::vector<std::string> keys,
                                    std::vector<std::string> args, ReplyCallback done) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(std::to_string(keys.size()));
  for (std::string& k : keys) argv.push_back(std::move(k));
  for (std::string& a : args) argv.push_back(std::move(a));
  core_->RunScript(script, std::move(argv), std::move(done));
}

ReplyResult EventLoopConnection::Call(std::vector<std::string> argv) {
  if (core_->InLoop()) return Internal("redis: blocking call from the connection's event loop");
  return WaitForReply([&](ReplyCallback done) { Submit(std::move(argv), std::move(done)); },
                      reply_wait_limit());
}

ReplyResult EventLoopConnection::CallScript(const LuaScript& script, std::vector<std::string> keys,
                                            std::vector<std::string> args) {
  if (core_->InLoop()) return Internal("redis: blocking call from the connection's event loop");
  return WaitForReply(
      [&](ReplyCallback done) {
        RunScript(script, std::move(keys), std::move(args), std::move(done));
      },
      reply_wait_limit());
}

bool EventLoopConnection::WaitUntilUp(std::chrono::milliseconds timeout) {
  return core_->WaitUntilUp(timeout);
}

EventLoopConnection::State EventLoopConnection::state() const { return core_->state(); }

EventLoopConnection::Stats EventLoopConnection::stats() const { return core_->stats(); }

std::chrono::milliseconds EventLoopConnection::reply_wait_limit() const {
  return RedisConnection::ReplyWaitLimit(options_);
}

Result<std::unique_ptr<RedisClient>> EventLoopConnection::NewBlockingClient(
    const std::string& name_suffix, int64_t command_timeout_ms) const {
  return RedisConnection::NewBlockingConnection(options_, name_suffix, command_timeout_ms);
}

}  // namespace sluice::redis
