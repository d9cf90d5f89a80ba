#include "http/session.h"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include "http/front_door.h"
#include "http/inference_codec.h"
#include "http/response_writer.h"

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

Session::Session(StrandSocket&& socket, std::shared_ptr<HttpServer::State> state)
    : socket_(std::move(socket)), state_(std::move(state)) {
  state_->open_connections.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  if (registered_) {
    std::lock_guard lock(state_->sessions_mu);
    state_->sessions.erase(registry_it_);
  }
  if (counted_request_) state_->in_progress.fetch_sub(1, std::memory_order_relaxed);
  state_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}
}  // namespace

void Session::ExpireAfter(int64_t ms) {
  deadline_ns_.store(NowNs() + ms * 1'000'000, std::memory_order_relaxed);
}

void Session::NoDeadline() { deadline_ns_.store(0, std::memory_order_relaxed); }

void Session::CloseIfExpired(TimePoint now) {
  int64_t deadline = deadline_ns_.load(std::memory_order_relaxed);
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  if (deadline == 0 || now_ns < deadline) return;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    int64_t d = self->deadline_ns_.load(std::memory_order_relaxed);
    if (d != 0 && NowNs() >= d) self->Close();  // re-checked on the strand
  });
}

void Session::Run() {
  {
    std::lock_guard lock(state_->sessions_mu);
    registry_it_ = state_->sessions.insert(state_->sessions.end(), weak_from_this());
    registered_ = true;
  }
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
}

void Session::RunReject() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    self->Write(
        MakeError(ReplyShape(11, false), Unavailable("too many open connections; retry shortly")));
  });
}

void Session::DoRead() {
  // The previous request is gone (handlers do not keep it): reuse its arena.
  parser_.reset();
  arena_.release();
  parser_.emplace(std::piecewise_construct, std::make_tuple(),
                  std::make_tuple(RequestAllocator(&arena_)));
  parser_->body_limit(state_->options.body_limit_bytes);
  parser_->header_limit(state_->options.header_limit_bytes);
  ExpireAfter(state_->options.idle_timeout_ms);
  bhttp::async_read_header(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec) return FailRead(ec);
  if (parser_->is_done()) return OnRequest();
  auto expect = parser_->get().find(bhttp::field::expect);
  if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue")) {
    // Tell clients such as curl to send the body now instead of waiting.
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                     parser_->get().version());
    ExpireAfter(state_->options.read_timeout_ms);
    bhttp::async_write(socket_, *cont,
                       [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  ExpireAfter(state_->options.read_timeout_ms);
  bhttp::async_read(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Session::OnBody(beast::error_code ec) {
  if (ec) return FailRead(ec);
  OnRequest();
}

void Session::FailRead(beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream || ec == asio::error::bad_descriptor ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
      ec == asio::error::eof) {
    return Close();
  }
  // A protocol error: answer it, then close (the stream position is lost).
  ReplyShape shape(11, false);
  if (ec == bhttp::error::body_limit) {
    return Write(
        MakeError(shape, Status(ErrorCode::kPayloadTooLarge,
                                "request body exceeds " +
                                    std::to_string(state_->options.body_limit_bytes) + " bytes")));
  }
  if (ec == bhttp::error::header_limit) {
    Status too_big = InvalidArgument("request headers exceed " +
                                     std::to_string(state_->options.header_limit_bytes) + " bytes");
    return Write(MakeResponse(shape, 431,
                              EncodeError(too_big, "", "request_header_fields_too_large"),
                              "application/json", /*close=*/true));
  }
  Write(MakeError(shape, InvalidArgument("malformed HTTP request: " + ec.message())));
}

void Session::OnRequest() {
  if (!counted_request_) {
    counted_request_ = true;
    state_->in_progress.fetch_add(1, std::memory_order_relaxed);
  }
  // The request's own deadline bounds the wait for its answer.
  NoDeadline();
  {
    std::lock_guard lock(gone_mu_);
    on_gone_ = nullptr;
  }
  awaiting_reply_ = true;
  Reply reply(
      [self = shared_from_this()](WireResponse&& res) {
        asio::dispatch(self->socket_.get_executor(),
                       [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
      },
      this);
  state_->options.handler->Handle(parser_->release(), std::move(reply));
  if (awaiting_reply_) {  // not answered at once: watch if the handler asked to
    bool wanted;
    {
      std::lock_guard lock(gone_mu_);
      wanted = static_cast<bool>(on_gone_);
    }
    if (wanted) WatchClient();
  }
}

void Session::OnClientGone(std::function<void()> fn) {
  std::lock_guard lock(gone_mu_);
  on_gone_ = std::move(fn);
}

void Session::WatchClient() {
  if (watch_pending_) return;  // the earlier wait still covers this request
  watch_pending_ = true;
  socket_.async_wait(
      asio::socket_base::wait_read,
      [self = shared_from_this()](beast::error_code ec) { self->OnClientReadable(ec); });
}

void Session::OnClientReadable(beast::error_code ec) {
  watch_pending_ = false;
  if (!awaiting_reply_ || ec == asio::error::operation_aborted) return;
  bool gone = static_cast<bool>(ec);
  if (!gone) {
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // a pipelined request: leave it for the parser
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return WatchClient();
    }
    gone = true;  // 0 = orderly close; < 0 = reset
  }
  std::function<void()> fn;
  {
    std::lock_guard lock(gone_mu_);
    fn = std::move(on_gone_);
    on_gone_ = nullptr;
  }
  if (fn) fn();
  Close();  // the reply, when it comes, finds the socket closed
}

void Session::Write(HttpResponse&& response) { Write(ToWire(response)); }

void Session::Write(WireResponse&& response) {
  awaiting_reply_ = false;
  bool keep_alive = response.keep_alive;
  write_buffer_ = std::move(response.bytes);
  ExpireAfter(state_->options.read_timeout_ms);
  asio::async_write(socket_, asio::buffer(write_buffer_),
                    [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                      self->OnWrite(keep_alive, ec);
                    });
}

void Session::OnWrite(bool keep_alive, beast::error_code ec) {
  if (counted_request_) {
    counted_request_ = false;
    state_->in_progress.fetch_sub(1, std::memory_order_relaxed);
  }
  if (ec || !keep_alive) return Close();
  DoRead();
}

void Session::Close() {
  NoDeadline();
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

}  // namespace sluice::http
