#include "common/http_fetch.h"

#include <chrono>
#include <exception>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

Result<HttpTarget> ParseHttpUrl(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return InvalidArgument("`" + std::string(url) + "` is not a URL (expected http://HOST:PORT)");
  }
  const auto& u = *parsed;
  if (u.scheme() != "http") {
    return InvalidArgument("only http:// is supported, got `" + std::string(u.scheme()) + "://`");
  }
  if (u.has_userinfo() || u.has_query() || u.has_fragment()) {
    return InvalidArgument("user info, query and fragment are not supported in `" +
                           std::string(url) + "`");
  }
  HttpTarget t;
  t.host = std::string(u.host_address());
  if (t.host.empty()) return InvalidArgument("no host in `" + std::string(url) + "`");
  if (u.has_port()) {
    if (u.port_number() == 0) {
      return InvalidArgument("bad port `" + std::string(u.port()) + "`");
    }
    t.port = u.port_number();
  }
  const bool ipv6 = u.host_type() == boost::urls::host_type::ipv6;
  t.host_header = (ipv6 ? "[" + t.host + "]" : t.host) +
                  (u.has_port() ? ":" + std::to_string(t.port) : std::string());
  t.base_path = std::string(u.encoded_path());
  while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  return t;
}

Result<tcp::endpoint> ResolveTarget(const HttpTarget& target) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec || results.empty()) {
    return Unavailable("cannot resolve `" + target.host +
                       "`: " + (ec ? ec.message() : std::string("no address")));
  }
  return results.begin()->endpoint();
}

Result<FetchResponse> HttpFetch(const tcp::endpoint& endpoint, const HttpTarget& target,
                                const FetchRequest& request) {
  const std::string where =
      target.host_header.empty() ? endpoint.address().to_string() : target.host_header;
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::milliseconds(request.connect_timeout_ms));

    bhttp::request<bhttp::string_body> req;
    req.method_string(request.method);
    req.target(target.base_path + request.path);
    req.version(11);
    req.set(bhttp::field::host, target.host_header);
    for (const auto& [name, value] : request.headers) req.set(name, value);
    if (!request.body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = request.body;
    }
    req.keep_alive(false);
    req.prepare_payload();

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    beast::error_code result;
    const char* stage = "connect";
    stream.async_connect(endpoint, [&](beast::error_code ec) {
      if (ec) {
        result = ec;
        return;
      }
      stage = "send";
      stream.expires_after(std::chrono::milliseconds(request.timeout_ms));
      bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec) {
          result = ec;
          return;
        }
        stage = "read";
        bhttp::async_read(stream, buffer, parser,
                          [&](beast::error_code ec, size_t) { result = ec; });
      });
    });
    ioc.run();
    if (result == beast::error::timeout) {
      if (std::string_view(stage) == "connect") {
        return Unavailable("cannot connect to " + where + ": no answer within " +
                           std::to_string(request.connect_timeout_ms) + " ms");
      }
      return DeadlineExceeded("no answer from " + where + " within " +
                              std::to_string(request.timeout_ms) + " ms (" + stage + ")");
    }
    if (result) {
      if (std::string_view(stage) == "connect") {
        return Unavailable("cannot connect to " + where + ": " + result.message());
      }
      return Unavailable(std::string(stage) + " failed on " + where + ": " + result.message());
    }
    FetchResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    if (auto it = parser.get().find("Server-Timing"); it != parser.get().end()) {
      out.server_timing = std::string(it->value());
    }
    return out;
  } catch (const std::exception& e) {  // e.g. an invalid method string
    return Unavailable("request to " + where + " failed: " + e.what());
  }
}

}  // namespace sluice
