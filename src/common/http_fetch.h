// The target URL and a one-shot blocking HTTP/1.1 exchange, for callers off
// any request path: the bench's preflight check and /metrics scrapes, and
// the trace exporter's POSTs (tracing/span_exporter.h).
//
// HttpFetch() opens a fresh connection, sends one request, reads one
// response and closes; the whole exchange (connect included) is bounded by
// `connect_timeout_ms` + `timeout_ms`. Never throws. Thread-safe (each call has its own
// io_context); blocks the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "common/status.h"

namespace sluice {

struct HttpTarget {
  std::string host;  // host name or address, without IPv6 brackets
  uint16_t port = 80;
  std::string host_header;  // value for the Host header: host[:port]
  std::string base_path;    // path prefix of the URL without a trailing slash ("" for none)
};

// Accepts http://HOST[:PORT][/PREFIX]; anything else (https, user info,
// query) is an InvalidArgument naming the problem (the caller adds which
// option or field held the URL).
Result<HttpTarget> ParseHttpUrl(std::string_view url);

// Resolves the target to its first TCP endpoint (blocking DNS lookup).
Result<boost::asio::ip::tcp::endpoint> ResolveTarget(const HttpTarget& target);

struct FetchResponse {
  int status = 0;
  std::string body;
  std::string server_timing;  // the Server-Timing header, "" if absent
};

struct FetchRequest {
  std::string method = "GET";
  std::string path = "/";  // appended to the target's base path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                   // sent with Content-Type: application/json when not empty
  int64_t connect_timeout_ms = 3000;  // to open the connection
  int64_t timeout_ms = 3000;          // then to send and read the whole response
};

// Errors: Unavailable("cannot connect to HOST:PORT: <reason>") when the
// connection fails, DeadlineExceeded on timeout, Unavailable for other
// transport errors. Any HTTP status is a successful fetch.
Result<FetchResponse> HttpFetch(const boost::asio::ip::tcp::endpoint& endpoint,
                                const HttpTarget& target, const FetchRequest& request);

}  // namespace sluice
