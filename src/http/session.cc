#include "http/session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include "http/front_door.h"
#include "http/inference_codec.h"
#include "http/response_writer.h"

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using std::chrono::milliseconds;

Session::Session(StrandSocket&& socket, std::shared_ptr<HttpServer::State> state)
    : stream_(std::move(socket)), state_(std::move(state)) {
  state_->open_connections.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  if (counted_request_) state_->in_progress.fetch_sub(1, std::memory_order_relaxed);
  state_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Session::Run() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
}

void Session::RunReject() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->Write(
        MakeError(ReplyShape(11, false), Unavailable("too many open connections; retry shortly")));
  });
}

void Session::DoRead() {
  parser_.emplace();
  parser_->body_limit(state_->options.body_limit_bytes);
  parser_->header_limit(state_->options.header_limit_bytes);
  stream_.expires_after(milliseconds(state_->options.idle_timeout_ms));
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
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
    stream_.expires_after(milliseconds(state_->options.read_timeout_ms));
    bhttp::async_write(stream_, *cont,
                       [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  stream_.expires_after(milliseconds(state_->options.read_timeout_ms));
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Session::OnBody(beast::error_code ec) {
  if (ec) return FailRead(ec);
  OnRequest();
}

void Session::FailRead(beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
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
  stream_.expires_never();
  Reply reply = [self = shared_from_this()](HttpResponse&& res) {
    asio::dispatch(self->stream_.get_executor(),
                   [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
  };
  state_->options.handler->Handle(parser_->release(), std::move(reply));
}

void Session::Write(HttpResponse&& response) {
  bool keep_alive = response.keep_alive();
  SerializeResponse(response, &write_buffer_);
  stream_.expires_after(milliseconds(state_->options.read_timeout_ms));
  asio::async_write(stream_, asio::buffer(write_buffer_),
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
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.close();
}

}  // namespace sluice::http
