#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "redis/event_loop_core.h"

namespace sluice::redis {

namespace asio = boost::asio;
namespace {

// RESP: *N\r\n, then $len\r\n<bytes>\r\n per argument.
void AppendCommand(std::string& out, const std::vector<std::string>& argv) {
  out += '*';
  out += std::to_string(argv.size());
  out += "\r\n";
  for (const std::string& a : argv) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

}  // namespace

void EventLoopConnection::Core::Connect() {
  int unstarted = kUnstarted;
  if (!phase_.compare_exchange_strong(unstarted, kStarted) && unstarted == kClosedUnstarted) {
    return;  // closed before the loop ran us
  }
  if (closing_.load(std::memory_order_acquire)) return;
  const uint64_t gen = ++gen_;
  connecting_ = true;
  reader_.reset(redisReaderCreate());
  connect_timer_.expires_after(milliseconds(o_.connect_timeout_ms));
  connect_timer_.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
    // A handler already queued when OnConnected() cancelled it finds
    // connecting_ cleared.
    if (ec || gen != self->gen_ || !self->connecting_) return;
    self->Fail("connect timed out after " + std::to_string(self->o_.connect_timeout_ms) + " ms");
  });
  auto on_connect = [self = shared_from_this(), gen](boost::system::error_code ec, auto&&...) {
    if (gen != self->gen_) return;
    if (ec) {
      self->Fail(ec.message());
      return;
    }
    self->OnConnected(gen);
  };
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(o_.host, ec);
  if (!ec) {
    socket_.async_connect(tcp::endpoint(address, static_cast<uint16_t>(o_.port)), on_connect);
    return;
  }
  resolver_.async_resolve(o_.host, std::to_string(o_.port),
                          [self = shared_from_this(), gen, on_connect](
                              boost::system::error_code rec, tcp::resolver::results_type results) {
                            if (gen != self->gen_) return;
                            if (rec) {
                              self->Fail("cannot resolve " + self->o_.host + ": " + rec.message());
                              return;
                            }
                            asio::async_connect(self->socket_, results, on_connect);
                          });
}

void EventLoopConnection::Core::OnConnected(uint64_t gen) {
  connecting_ = false;
  connect_timer_.cancel();
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.set_option(asio::socket_base::keep_alive(true), ignored);
  last_activity_ = SteadyTime::now();
  Read();
  if (gen == gen_) Handshake();
}

void EventLoopConnection::Core::Handshake() {
  std::vector<std::vector<std::string>> commands;
  if (!o_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!o_.username.empty()) auth.push_back(o_.username);
    auth.push_back(o_.password);
    commands.push_back(std::move(auth));
  }
  if (!o_.client_name.empty()) commands.push_back({"CLIENT", "SETNAME", o_.client_name});
  {
    std::lock_guard lock(scripts_mu_);
    for (const auto& [sha, body] : scripts_) commands.push_back({"SCRIPT", "LOAD", body});
  }
  if (commands.empty()) {
    BecomeUp();
    return;
  }
  out_.clear();
  for (const auto& argv : commands) {
    AppendCommand(out_, argv);
    waiting_.push_back(Waiting{nullptr, Kind::kHandshake, argv[0]});
  }
  handshake_left_ = commands.size();
  StartWrite(commands.size(), gen_);
}

void EventLoopConnection::Core::BecomeUp() {
  if (connected_before_) counters_.reconnects.fetch_add(1, std::memory_order_relaxed);
  connected_before_ = true;
  up_ = true;
  SetState(State::kUp);
  ArmHealthTimer();
  WriteQueued();
}

void EventLoopConnection::Core::WriteQueued() {
  if (writing_ || !up_ || queued_.empty()) return;
  out_.clear();
  size_t n = 0;
  for (; n < o_.max_pipeline_commands && !queued_.empty(); ++n) {
    Command& c = queued_.front();
    AppendCommand(out_, c.argv);
    if (c.kind == Kind::kUser) queued_users_.fetch_sub(1, std::memory_order_relaxed);
    waiting_.push_back(Waiting{std::move(c.done), c.kind, {}});
    queued_.pop_front();
  }
  StartWrite(n, gen_);
}

void EventLoopConnection::Core::StartWrite(size_t commands, uint64_t gen) {
  counters_.commands_sent.fetch_add(commands, std::memory_order_relaxed);
  counters_.pipelines.fetch_add(1, std::memory_order_relaxed);
  // The reply clock starts when nothing was due before these.
  if (waiting_.size() == commands) ArmReplyTimer();
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this(), gen](boost::system::error_code ec, size_t) {
                      if (gen != self->gen_) return;
                      self->writing_ = false;
                      self->last_activity_ = SteadyTime::now();
                      if (ec) {
                        self->Fail("write: " + ec.message());
                        return;
                      }
                      self->WriteQueued();
                    });
}

void EventLoopConnection::Core::Read() {
  socket_.async_read_some(
      asio::buffer(in_), [self = shared_from_this(), gen = gen_](
                             boost::system::error_code ec, size_t n) { self->OnRead(ec, n, gen); });
}

void EventLoopConnection::Core::OnRead(const boost::system::error_code& ec, size_t n,
                                       uint64_t gen) {
  if (gen != gen_) return;
  if (ec) {
    Fail(ec == asio::error::eof ? "the server closed the connection" : "read: " + ec.message());
    return;
  }
  last_activity_ = SteadyTime::now();
  redisReaderFeed(reader_.get(), in_.data(), n);
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      Fail(std::string("protocol error: ") + reader_->errstr);
      return;
    }
    if (raw == nullptr) break;
    auto* r = static_cast<redisReply*>(raw);
    RedisReply reply = RedisReply::FromHiredis(r);
    freeReplyObject(r);
    OnReply(std::move(reply));
    if (gen != gen_) return;  // the reply failed the connection, or a callback closed it
  }
  if (waiting_.empty()) {
    reply_timer_.cancel();
  } else {
    ArmReplyTimer();  // progress: the next reply has command_timeout_ms again
  }
  Read();
}

void EventLoopConnection::Core::OnReply(RedisReply reply) {
  if (waiting_.empty()) {
    Fail("a reply with no command waiting for it");
    return;
  }
  Waiting w = std::move(waiting_.front());
  waiting_.pop_front();
  if (reply.is_error()) counters_.error_replies.fetch_add(1, std::memory_order_relaxed);
  if (!answered_ && !(w.kind == Kind::kHandshake && reply.is_error())) {
    answered_ = true;  // the server talks: the next loss reconnects at once
    backoff_ms_ = o_.reconnect_initial_backoff_ms;
  }
  switch (w.kind) {
    case Kind::kHandshake:
      if (reply.is_error()) {
        // The server's refusal (WRONGPASS, NOAUTH...) never echoes the password.
        const std::string who =
            w.name == "AUTH" && !o_.username.empty() ? " as '" + o_.username + "'" : std::string();
        Fail("redis " + w.name + who + " refused: " + reply.str);
        return;
      }
      if (--handshake_left_ == 0) BecomeUp();
      return;
    case Kind::kQuiet:
      return;
    case Kind::kUser:
      Deliver(w.done, std::move(reply));
      return;
  }
}

void EventLoopConnection::Core::FailAll(const Status& status) {
  std::deque<Waiting> waiting;
  std::deque<Command> queued;
  waiting.swap(waiting_);
  queued.swap(queued_);
  for (Waiting& w : waiting) {
    if (w.kind == Kind::kUser) Deliver(w.done, status);
  }
  for (Command& c : queued) {
    if (c.kind != Kind::kUser) continue;
    queued_users_.fetch_sub(1, std::memory_order_relaxed);
    Deliver(c.done, status);
  }
}

void EventLoopConnection::Core::Fail(const std::string& why) {
  // Lost after the server had answered while up: try again at once (a
  // restarted server is back). Anything earlier (connect, handshake, a
  // server that accepts and hangs up) waits out the backoff.
  const bool lost = up_ && answered_;
  const uint64_t gen = ++gen_;
  counters_.io_errors.fetch_add(1, std::memory_order_relaxed);
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  reply_timer_.cancel();
  health_timer_.cancel();
  writing_ = false;
  up_ = false;
  handshake_left_ = 0;
  // Down first, so that no new command joins the queue, then fail it.
  SetState(State::kDown);
  connecting_ = false;
  answered_ = false;
  FailAll(Unavailable(std::string(lost ? "redis connection lost (" : "redis unavailable (") +
                      Where() + "): " + why));
  if (closing_.load(std::memory_order_acquire) || gen != gen_) return;
  int64_t delay_ms = 0;
  if (!lost) {
    delay_ms = backoff_ms_;
    backoff_ms_ = std::min(2 * backoff_ms_, o_.reconnect_max_backoff_ms);
  }
  retry_timer_.expires_after(milliseconds(delay_ms));
  retry_timer_.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
    if (!ec && gen == self->gen_) self->Connect();
  });
}

void EventLoopConnection::Core::ArmReplyTimer() {
  reply_timer_.expires_after(milliseconds(o_.command_timeout_ms));
  reply_timer_.async_wait([self = shared_from_this(), gen = gen_](boost::system::error_code ec) {
    // A handler queued before a cancel() or a re-arm finds a later expiry.
    if (ec || gen != self->gen_ || self->waiting_.empty() ||
        self->reply_timer_.expiry() > SteadyTime::now()) {
      return;
    }
    self->Fail("no reply within " + std::to_string(self->o_.command_timeout_ms) + " ms");
  });
}

void EventLoopConnection::Core::ArmHealthTimer() {
  if (o_.health_check_interval_ms <= 0) return;
  const milliseconds interval(o_.health_check_interval_ms);
  health_timer_.expires_after(interval);
  health_timer_.async_wait(
      [self = shared_from_this(), gen = gen_, interval](boost::system::error_code ec) {
        if (ec || gen != self->gen_ || self->health_timer_.expiry() > SteadyTime::now()) return;
        if (self->waiting_.empty() && self->queued_.empty() &&
            SteadyTime::now() - self->last_activity_ >= interval) {
          self->Queue(Command{{"PING"}, nullptr, Kind::kQuiet});
        }
        if (gen == self->gen_) self->ArmHealthTimer();
      });
}

}  // namespace sluice::redis
