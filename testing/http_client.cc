#include "testing/http_client.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

namespace sluice::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr uint64_t kResponseBodyLimit = 64ull << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Response ToResponse(http::response<http::string_body>&& res) {
  Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name = Lower(field.name_string());
    auto [it, inserted] = out.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  out.body = std::move(res.body());
  return out;
}

Status TransportError(const beast::error_code& ec, std::string_view what) {
  if (ec == beast::error::timeout) return DeadlineExceeded(std::string(what) + ": timed out");
  return Unavailable(std::string(what) + ": " + ec.message());
}

// Runs the io_context until `done` is set by the started operation's handler.
// Each operation carries a tcp_stream expiry, so this always ends.
void RunUntil(asio::io_context& ioc, const bool& done) {
  ioc.restart();
  while (!done) {
    if (ioc.run_one() == 0) break;
  }
}

beast::error_code Connect(asio::io_context& ioc, beast::tcp_stream& stream, uint16_t port,
                          std::chrono::milliseconds timeout) {
  beast::error_code result;
  bool done = false;
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port),
                       [&](beast::error_code ec) {
                         result = ec;
                         done = true;
                       });
  RunUntil(ioc, done);
  return done ? result : beast::error_code(asio::error::interrupted);
}

// Writes `message` (any Beast message or buffer sequence via `start`) and reads
// one response into `parser`. Returns the first error and which step it hit.
template <class StartWrite>
std::pair<beast::error_code, const char*> Exchange(asio::io_context& ioc, beast::tcp_stream& stream,
                                                   beast::flat_buffer& buffer,
                                                   http::response_parser<http::string_body>& parser,
                                                   std::chrono::milliseconds timeout,
                                                   StartWrite start_write,
                                                   bool tolerate_write_error) {
  beast::error_code write_ec;
  bool done = false;
  stream.expires_after(timeout);
  start_write([&](beast::error_code ec, size_t) {
    write_ec = ec;
    done = true;
  });
  RunUntil(ioc, done);
  if (!done) return {asio::error::interrupted, "write"};
  if (write_ec && !tolerate_write_error) return {write_ec, "write"};

  beast::error_code read_ec;
  done = false;
  stream.expires_after(timeout);
  http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
    read_ec = ec;
    done = true;
  });
  RunUntil(ioc, done);
  if (!done) return {asio::error::interrupted, "read"};
  if (read_ec) return {read_ec, "read"};
  return {{}, ""};
}

}  // namespace

std::string Response::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

boost::json::value Response::Json() const { return ParseJsonOrNull(body); }

boost::json::value ParseJsonOrNull(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return nullptr;
  return v;
}

struct HttpClient::Impl {
  uint16_t port;
  std::chrono::milliseconds timeout;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  void Close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
      stream.reset();
    }
    buffer.clear();
  }
};

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() { impl_->Close(); }

bool HttpClient::connected() const { return impl_->stream.has_value(); }

void HttpClient::Close() { impl_->Close(); }

Result<Response> HttpClient::Request(std::string_view method, std::string_view target,
                                     std::string body, const Headers& headers) {
  Impl& d = *impl_;
  if (!d.stream) {
    d.stream.emplace(d.ioc);
    beast::error_code ec = Connect(d.ioc, *d.stream, d.port, d.timeout);
    if (ec) {
      d.Close();
      return TransportError(ec, "connect");
    }
  }

  http::request<http::string_body> req;
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(d.port));
  req.set(http::field::user_agent, "sluice-integration-test");
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    if (Lower(name) == "content-type") has_content_type = true;
    req.insert(name, value);
  }
  if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();

  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  if (verb == http::verb::head) parser.skip(true);
  auto [ec, step] = Exchange(
      d.ioc, *d.stream, d.buffer, parser, d.timeout,
      [&](auto handler) { http::async_write(*d.stream, req, std::move(handler)); },
      /*tolerate_write_error=*/false);
  if (ec) {
    d.Close();
    return TransportError(ec, step);
  }
  http::response<http::string_body> res = parser.release();
  bool keep_alive = res.keep_alive();
  Response out = ToResponse(std::move(res));
  if (!keep_alive) d.Close();
  return out;
}

Result<RawReply> SendRaw(uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec = Connect(ioc, stream, port, timeout);
  if (ec) return TransportError(ec, "connect");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  auto [exchange_ec, step] = Exchange(
      ioc, stream, buffer, parser, timeout,
      [&](auto handler) { asio::async_write(stream, asio::buffer(bytes), std::move(handler)); },
      /*tolerate_write_error=*/true);
  RawReply reply;
  if (exchange_ec) {
    reply.error = exchange_ec == beast::error::timeout ? "timeout" : exchange_ec.message();
  } else {
    reply.response = ToResponse(parser.release());
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
  return reply;
}

}  // namespace sluice::testing
