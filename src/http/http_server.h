// HttpServer: the front door's listener and connections (Boost.Beast, async).
//
// One Session per connection, each on its own strand; HTTP/1.1 keep-alive,
// one request at a time per connection. Limits, all explicit in Options:
// header and body size (431 / 413 and the connection closes), idle time
// waiting for a request, read time for a started request, and open
// connections (beyond the cap a connection gets 503 and is closed). While a
// handler works on a request the connection has no read timeout: the
// request's own deadline bounds it.
//
// Threading: runs on the io_context passed to Create() (any number of
// threads may run it). Start()/StopAccepting() are thread-safe. The server
// must outlive the io_context's run() calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "http/types.h"

namespace sluice::http {

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "127.0.0.1";
    uint16_t port = 8080;                    // 0 = any free port; see port()
    int max_connections = 10'000;            // open connections; beyond: 503 + close
    uint64_t body_limit_bytes = 1 << 20;     // beyond: 413 + close
    uint32_t header_limit_bytes = 16 << 10;  // beyond: 431 + close
    int64_t read_timeout_ms = 10'000;        // a started request must arrive within this
    int64_t idle_timeout_ms = 60'000;        // keep-alive wait for the next request
    RequestHandler* handler = nullptr;       // required; borrowed
  };

  // Binds and listens (errors: address in use, bad address).
  static Result<std::unique_ptr<HttpServer>> Create(boost::asio::io_context& ioc,
                                                    const Options& options);
  ~HttpServer();

  uint16_t port() const { return port_; }
  void Start();          // begins accepting
  void StopAccepting();  // closes the listening socket; open connections go on

  // Snapshot counters (any thread).
  size_t open_connections() const;
  // Requests read whose response has not been fully written yet.
  size_t requests_in_progress() const;

  struct State;  // shared with sessions (internal)

 private:
  HttpServer(std::shared_ptr<State> state, uint16_t port);

  std::shared_ptr<State> state_;
  uint16_t port_;
};

}  // namespace sluice::http
