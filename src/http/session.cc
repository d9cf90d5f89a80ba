#include "http/session.h"

#include <sys/socket.h>

#include <cassert>
#include <cerrno>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include "http/front_door.h"
#include "http/inference_codec.h"
#include "http/response_writer.h"

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {
// A read buffer this large or larger is released between requests.
constexpr size_t kKeepBufferBytes = 8 << 10;
// Room in the read buffer beyond the header limit: a chunk-size line with
// its extensions, or a trailer block, must fit in it.
constexpr size_t kBufferSlackBytes = 4 << 10;
// After refusing a request from its header: how much of its unread body is
// read and discarded (so the refusal is not lost to a reset) before closing.
constexpr size_t kLingerBytes = 256 << 10;
constexpr int64_t kLingerMs = 2'000;
}  // namespace

Session::Session(ConnectionSocket&& socket, std::shared_ptr<HttpServer::State> state,
                 std::string client)
    : socket_(std::move(socket)),
      state_(std::move(state)),
      client_(std::move(client)),
      buffer_(state_->options.header_limit_bytes + kBufferSlackBytes) {
  state_->open_connections.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  if (registered_) {
    std::lock_guard lock(state_->sessions_mu);
    state_->sessions.erase(registry_it_);
  }
  if (!client_.empty()) {
    std::lock_guard lock(state_->clients_mu);
    auto it = state_->per_client.find(client_);
    if (it != state_->per_client.end() && --it->second <= 0) state_->per_client.erase(it);
  }
  if (charged_bytes_ != 0) state_->unauthenticated_bytes.fetch_sub(charged_bytes_);
  if (counted_request_) state_->in_progress.fetch_sub(1, std::memory_order_relaxed);
  state_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Session::Recharge(bool authenticated) {
  uint64_t now = authenticated ? 0 : sizeof(Session) + buffer_.capacity() + arena_upstream_.bytes();
  if (now > charged_bytes_) {
    state_->unauthenticated_bytes.fetch_add(now - charged_bytes_);
  } else if (now < charged_bytes_) {
    state_->unauthenticated_bytes.fetch_sub(charged_bytes_ - now);
  }
  charged_bytes_ = now;
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
    if (d != 0 && NowNs() >= d) self->Close();  // re-checked on its thread
  });
}

void Session::Register() {
  std::lock_guard lock(state_->sessions_mu);
  registry_it_ = state_->sessions.insert(state_->sessions.end(), weak_from_this());
  registered_ = true;
}

void Session::Run() {
  Register();
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
}

void Session::RunReject(const char* why) {
  Register();  // the sweep bounds the write to a client that never reads
  asio::dispatch(socket_.get_executor(), [self = shared_from_this(), why] {
    self->Write(MakeError(ReplyShape(11, false), Unavailable(why)));
  });
}

void Session::DoRead() {
  // The previous request is gone (handlers do not keep it): reuse its arena.
  parser_.reset();
  arena_.release();
  if (buffer_.size() == 0 && buffer_.capacity() > kKeepBufferBytes) buffer_.shrink_to_fit();
  RequestParser::Limits limits;
  limits.header_limit_bytes = state_->options.header_limit_bytes;
  limits.max_fields = state_->options.max_header_fields;
  limits.chunk_extension_limit_bytes = state_->options.chunk_extension_limit_bytes;
  limits.body_limit_bytes = state_->options.body_limit_bytes;
  parser_.emplace(limits, &arena_);
  // Keep-alive: the next request may take idle_timeout_ms to start; once it
  // has, its whole header must arrive within read_timeout_ms.
  header_started_ = buffer_.size() > 0;
  ExpireAfter(header_started_ ? state_->options.read_timeout_ms : state_->options.idle_timeout_ms);
  ReadHeader();
}

void Session::ReadHeader() {
  if (buffer_.size() > 0) {  // pipelined or partly read: parse what is here
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec && ec != bhttp::error::need_more) return FailRead(ec);
    if (parser_->is_header_done()) return OnHeader();
  }
  // Reads go straight into the bounded buffer, one socket read at a time, so
  // that the bytes held and the header deadline are tracked per read.
  size_t room = buffer_.max_size() - buffer_.size();
  if (room == 0) return FailRead(bhttp::error::header_limit);
  size_t n = std::min<size_t>(room, std::max<size_t>(1024, buffer_.capacity() - buffer_.size()));
  socket_.async_read_some(buffer_.prepare(n),
                          [self = shared_from_this()](beast::error_code ec, size_t got) {
                            self->OnHeaderPart(ec, got);
                          });
}

void Session::OnHeaderPart(beast::error_code ec, size_t bytes) {
  buffer_.commit(bytes);
  if (!authenticated_) Recharge(false);
  if (ec == asio::error::eof) return Close();  // before a complete header
  if (ec) return FailRead(ec);
  if (!header_started_) {
    header_started_ = true;
    ExpireAfter(state_->options.read_timeout_ms);
  }
  ReadHeader();
}

void Session::OnHeader() {
  HeaderVerdict verdict = state_->options.handler->CheckHeader(parser_->get());
  if (verdict.authenticated && !authenticated_) {
    authenticated_ = true;
    Recharge(true);
  }
  if (verdict.refuse) return Refuse(std::move(*verdict.refuse));
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

void Session::Refuse(HttpResponse&& response) {
  // The body (if any) is never read: the stream position is lost, so the
  // connection closes after the answer.
  response.keep_alive(false);
  const bool has_body = parser_->content_length().value_or(0) > 0 || parser_->chunked();
  linger_after_write_ = has_body && !parser_->is_done();
  Write(ToWire(response));
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
  if (ec == bhttp::error::buffer_overflow) {  // a chunk-size line or trailers
    return Write(MakeError(shape, InvalidArgument("chunk header or trailer block exceeds " +
                                                  std::to_string(buffer_.max_size()) + " bytes")));
  }
  if (ec == bhttp::error::bad_chunk_extension && parser_->chunked()) {
    return Write(MakeError(
        shape,
        InvalidArgument("malformed chunk extensions or longer than " +
                        std::to_string(state_->options.chunk_extension_limit_bytes) + " bytes")));
  }
  if (ec == bhttp::error::header_limit) {
    Status too_big = InvalidArgument(
        "request headers exceed " + std::to_string(state_->options.header_limit_bytes) +
        " bytes or " + std::to_string(state_->options.max_header_fields) + " fields");
    return Write(MakeResponse(shape, 431,
                              EncodeError(too_big, "", "request_header_fields_too_large"),
                              "application/json", /*close=*/true));
  }
  Write(MakeError(shape, InvalidArgument("malformed HTTP request: " + ec.message())));
}

void Session::OnRequest() {
  assert(socket_.get_executor().running_in_this_thread());  // HttpServer's contract
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
  // Only an answer given inside Handle() (a refusal) is written at once; any
  // other, from another thread or from another handler on this one (a
  // dispatcher's batch), is posted to this connection's thread.
  Reply reply(
      [self = shared_from_this()](WireResponse&& res) {
        const ConnectionExecutor& ex = self->socket_.get_executor();
        if (ex.running_in_this_thread() && self->in_handler_) return self->Write(std::move(res));
        asio::post(ex, [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
      },
      this,
      [self = shared_from_this()](std::function<void()> fn) {
        asio::post(self->socket_.get_executor(), std::move(fn));
      });
  in_handler_ = true;
  state_->options.handler->Handle(parser_->release(), std::move(reply));
  in_handler_ = false;
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
    if (n == 0 && !streaming_) {
      // An orderly close of the client's side: it may only have half-closed
      // (shutdown(SHUT_WR) after sending), so it is still answered; the
      // connection closes after the reply. (A client that closes while its
      // answer streams has left.)
      peer_closed_ = true;
      return;
    }
    gone = true;  // a reset, or a close mid-stream
  }
  ClientGone();
}

void Session::Write(HttpResponse&& response) { Write(ToWire(response)); }

void Session::Write(WireResponse&& response) {
  assert(socket_.get_executor().running_in_this_thread());
  if (response.more && !awaiting_reply_) return;  // a stray part after the last: dropped
  if (part_in_flight_) {                          // a streamed response: parts go out in order
    parts_.push_back(std::move(response));
    return;
  }
  if (response.more) {
    // Still awaiting the rest of the reply: the client stays watched.
    streaming_ = true;
    part_in_flight_ = true;
    write_buffer_ = std::move(response.bytes);
    ExpireAfter(state_->options.read_timeout_ms);
    asio::async_write(
        socket_, asio::buffer(write_buffer_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnPartWritten(ec); });
    return;
  }
  awaiting_reply_ = false;
  if (response.status >= 400 && response.status < 500 && response.status != 429 &&
      ++bad_requests_ >= state_->options.max_bad_requests_per_connection) {
    close_after_write_ = true;  // a client that keeps sending bad requests
  }
  if (close_after_write_ || peer_closed_) {
    // The last part of a stream has no header to say so: the close does.
    if (streaming_) {
      response.keep_alive = false;
    } else {
      MarkLastOnConnection(&response);
    }
  }
  streaming_ = false;
  bool keep_alive = response.keep_alive;
  write_buffer_ = std::move(response.bytes);
  ExpireAfter(state_->options.read_timeout_ms);
  asio::async_write(socket_, asio::buffer(write_buffer_),
                    [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                      self->OnWrite(keep_alive, ec);
                    });
}

void Session::OnPartWritten(beast::error_code ec) {
  part_in_flight_ = false;
  // The client has gone: the parts still queued fail at once on the closed
  // socket, the last of them ending the request as any failed write does.
  if (ec) {
    ClientGone();
  } else {
    NoDeadline();  // until the next part: the request's own deadline bounds the wait
  }
  if (parts_.empty()) return;
  WireResponse next = std::move(parts_.front());
  parts_.pop_front();
  Write(std::move(next));
}

void Session::ClientGone() {
  std::function<void()> fn;
  {
    std::lock_guard lock(gone_mu_);
    fn = std::move(on_gone_);
    on_gone_ = nullptr;
  }
  if (fn) fn();
  Close();  // the reply, when it comes, finds the socket closed
}

void Session::OnWrite(bool keep_alive, beast::error_code ec) {
  if (counted_request_) {
    counted_request_ = false;
    state_->in_progress.fetch_sub(1, std::memory_order_relaxed);
  }
  if (ec) return Close();
  if (linger_after_write_) return Linger();
  if (!keep_alive) return Close();
  DoRead();
}

void Session::Linger() {
  // Half-close, then read and drop what the client still sends (bounded in
  // bytes and time) so that its unread body does not make the kernel reset
  // the connection before the client has read the answer.
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  ExpireAfter(kLingerMs);
  buffer_.clear();
  buffer_.shrink_to_fit();
  DrainLinger();
}

void Session::DrainLinger() {
  socket_.async_read_some(asio::buffer(linger_scratch_),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->lingered_bytes_ += n;
                            if (ec || self->lingered_bytes_ >= kLingerBytes) return self->Close();
                            self->DrainLinger();
                          });
}

void Session::Close() {
  NoDeadline();
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

}  // namespace sluice::http
