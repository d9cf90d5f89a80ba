// HttpClient: a small synchronous HTTP/1.1 client for integration tests.
//
// One keep-alive TCP connection to 127.0.0.1:port, opened on the first
// Request() and again after the server closed it (a response without
// keep-alive, or a transport error). Each call blocks until the whole response
// has arrived or `timeout` passes, so a hung server fails a test instead of
// hanging it. Internally the calls are Beast async operations run to
// completion on a private io_context.
//
// SendRaw() writes arbitrary bytes on a fresh connection (malformed HTTP,
// oversized headers) and reads back at most one response.
//
// Thread-compatible: one HttpClient per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"

namespace sluice::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case

  // The header's value, or "" when absent. `name` is matched case-insensitively.
  std::string Header(std::string_view name) const;
  // The body parsed as JSON; a null value when it is not valid JSON.
  boost::json::value Json() const;
};

// Parses `text` as JSON; a null value when it is not valid JSON.
boost::json::value ParseJsonOrNull(std::string_view text);

class HttpClient {
 public:
  explicit HttpClient(uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and waits for its response. `headers` are added as
  // given (Host, User-Agent and Content-Length are set automatically; a
  // Content-Type of application/json is added for a non-empty body unless
  // given). Errors: connect refused, connection closed or reset before a whole
  // response (kUnavailable), or the timeout passed (kDeadlineExceeded).
  Result<Response> Request(std::string_view method, std::string_view target, std::string body = "",
                           const Headers& headers = {});

  // Shorthands.
  Result<Response> Get(std::string_view target, const Headers& headers = {}) {
    return Request("GET", target, "", headers);
  }
  Result<Response> Post(std::string_view target, std::string body, const Headers& headers = {}) {
    return Request("POST", target, std::move(body), headers);
  }

  // True while a connection is open (it may still have been closed by the
  // server without us noticing yet).
  bool connected() const;
  // Closes the connection; the next Request() opens a new one.
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What came back from SendRaw().
struct RawReply {
  std::optional<Response> response;  // set when one complete response arrived
  std::string error;                 // otherwise why not: "end of stream", "timeout", ...
};

// Opens a new connection to 127.0.0.1:port, writes `bytes` (a failed write is
// tolerated: the server may answer and close early), then reads one response.
// Errors: only when the connection could not be opened.
Result<RawReply> SendRaw(uint16_t port, std::string_view bytes,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

// Bearer header for `token`.
inline std::pair<std::string, std::string> Bearer(std::string_view token) {
  return {"Authorization", "Bearer " + std::string(token)};
}

}  // namespace sluice::testing
