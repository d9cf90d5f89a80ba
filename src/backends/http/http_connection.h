// HttpConnection: one keep-alive HTTP/1.1 (or HTTPS) client connection to one
// endpoint of a fixed inference API, used by one backend slot.
//
// One request at a time: Post() sends a request and calls `done` exactly once
// with the reply (any status code) or a transport error. The connection opens
// lazily on the first Post() and is kept open while the server allows
// keep-alive; a request that fails on a reused connection before any reply
// (the server closed it while idle) is sent once more on a fresh connection.
//
// Timeouts: resolving, connecting and the TLS handshake together get
// `connect_timeout_ms`; writing the request and reading the whole reply get
// `request_timeout_ms`. Either expiring closes the connection and fails the
// request with kDeadlineExceeded; other transport failures (refused, reset,
// bad TLS, a reply over the body limit, malformed HTTP) are kBackendError.
//
// Threading: all work runs on a strand of the io_context; Post() and Close()
// may be called from any thread and never block. `done` runs on that strand.
// Lifetime: the caller owns the HttpConnection; pending operations keep its
// internal state alive, and destroying it (or Close()) makes an in-flight
// request fail promptly (`done` still runs once). The io_context must outlive
// every pending operation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/status.h"

namespace sluice::http_backend {

// Where requests go, from an "http(s)://host[:port][/path]" URL.
struct Endpoint {
  bool tls = false;
  std::string host;       // name or address (IPv6 without brackets)
  std::string port;       // "80" / "443" when the URL has none
  std::string base_path;  // URL path without a trailing '/'; "" for none
  std::string url;        // as given, for messages
};

// Errors: not http/https, no host, a bad port, userinfo, query or fragment.
Result<Endpoint> ParseEndpointUrl(const std::string& url);

struct TlsOptions {
  std::string ca_file;      // PEM CA bundle; empty = the system's default CAs
  std::string cert_file;    // PEM client certificate for mTLS; empty = none
  std::string key_file;     // PEM private key of cert_file (REQUIRED with cert_file)
  bool verify_peer = true;  // verify the server certificate and host name
};

// A client TLS context (TLS 1.2+). Errors name the file that could not be
// loaded. Share one context between the connections of one endpoint.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeTlsContext(const TlsOptions& options);

struct HttpReply {
  int status = 0;  // HTTP status code
  std::string body;
};

class HttpConnection {
 public:
  struct Options {
    Endpoint endpoint;
    int64_t connect_timeout_ms = 1'000;              // resolve + connect + TLS handshake
    int64_t request_timeout_ms = 3'000;              // write request + read whole reply
    uint64_t body_limit_bytes = 64ull << 20;         // larger replies fail the request
    std::shared_ptr<boost::asio::ssl::context> tls;  // REQUIRED when endpoint.tls
  };
  using ReplyFn = std::function<void(Result<HttpReply>)>;
  // For a reply read as it arrives (server-sent events): called on the
  // strand after each read with the body received so far, which it may
  // consume (erase what it has handled); returning false abandons the
  // request (the connection is closed, `done` gets kCancelled).
  using ProgressFn = std::function<bool(std::string& body)>;

  // Errors: non-positive timeouts, an https endpoint without a TLS context.
  static Result<std::unique_ptr<HttpConnection>> Create(boost::asio::io_context& ioc,
                                                        Options options);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // POSTs `body` (application/json) to `target` (path and query), with a
  // traceparent header (W3C Trace Context) when `traceparent` is not empty.
  // REQUIRES: no other Post() in flight on this connection.
  void Post(std::string target, std::string body, ReplyFn done, std::string traceparent = "");
  // The same, reading the reply as it arrives: `progress` sees each part of
  // the body (see ProgressFn), `done` gets what is left of it at the end.
  // request_timeout_ms then bounds each wait for more of the reply (the
  // time to the first byte, then each gap), not the whole reply.
  void PostStreaming(std::string target, std::string body, ProgressFn progress, ReplyFn done,
                     std::string traceparent = "");

  // Closes the socket; an in-flight request fails with kUnavailable.
  void Close();

 private:
  struct Impl;
  explicit HttpConnection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::http_backend
