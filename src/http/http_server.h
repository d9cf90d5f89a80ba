// HttpServer: the front door's listener and connections (Boost.Beast, async).
//
// One Session per connection, on one event loop; HTTP/1.1 keep-alive,
// one request at a time per connection.
//
// Limits, all explicit in Options. Every buffer a client can grow is bounded:
//   - header block <= header_limit_bytes and <= max_header_fields fields
//     (431, close); each chunk's extensions <= chunk_extension_limit_bytes
//     and a chunk-size line or trailer block must fit the read buffer
//     (400, close); body <= body_limit_bytes (413, close);
//   - the read buffer holds at most header_limit_bytes + 4 KiB.
// So a connection holds at most about
//   2 x header_limit_bytes + 4 KiB + 2 KiB + 64 B x max_header_fields
// (about 45 KiB with the defaults) before its request is authenticated, plus
// body_limit_bytes once it is (see RequestHandler::CheckHeader: a request
// the handler refuses from its header is answered and the connection closed
// without reading the body). Connections that have not yet sent an
// authenticated request together hold at most about
// unauthenticated_memory_limit_bytes: past it new connections get 503 and
// are closed.
//
// Time: the first byte of a request may take idle_timeout_ms (keep-alive);
// from then the whole header, and then the whole body, must each arrive
// within read_timeout_ms (slow senders are closed). While a handler works on
// a request the connection has no read timeout: the request's own deadline
// bounds it. A client that half-closes its side after sending is still
// answered; one that resets the connection is reported gone (ClientWatch).
//
// Connections: at most max_connections open, and max_connections_per_client
// per client address (0 = no cap); beyond either the connection gets 503 and
// is closed. After max_bad_requests_per_connection client errors (4xx other
// than 429) the connection is closed. When accept() fails for want of file
// descriptors (or memory) the listener backs off and logs once per interval
// instead of spinning.
//
// Threading: the listener runs on the io_context passed to Create(), each
// connection on the context Options::connection_contexts gives it (or, with
// none, on the one passed to Create()). Exactly one thread may run each
// context a connection can be placed on (as IoContextPool does): a
// connection's handlers are serialized by its context alone, without a
// strand. Start()/StopAccepting() are thread-safe. The server must outlive
// the contexts' run() calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "http/types.h"

namespace sluice {
class IoContextPool;
}  // namespace sluice

namespace sluice::http {

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "127.0.0.1";
    uint16_t port = 8080;                        // 0 = any free port; see port()
    int max_connections = 10'000;                // open connections; beyond: 503 + close
    uint64_t body_limit_bytes = 1 << 20;         // beyond: 413 + close
    uint32_t header_limit_bytes = 16 << 10;      // beyond: 431 + close
    int64_t read_timeout_ms = 10'000;            // a started request must arrive within this
    int64_t idle_timeout_ms = 60'000;            // keep-alive wait for the next request
    uint32_t max_header_fields = 100;            // header + trailer fields; beyond: 431 + close
    uint32_t chunk_extension_limit_bytes = 256;  // per chunk; beyond: 400 + close
    int max_connections_per_client = 0;          // per client address; 0 = no cap
    int max_bad_requests_per_connection = 10;    // 4xx (not 429) before the server closes
    // Bytes held by connections that have not sent an authenticated request
    // yet (read buffers and header fields); beyond it new connections get
    // 503 and are closed.
    uint64_t unauthenticated_memory_limit_bytes = 64ull << 20;
    // accept() failures for want of descriptors or memory: wait this long
    // before accepting again (logged at most once per 10 s).
    int64_t accept_backoff_ms = 100;
    RequestHandler* handler = nullptr;  // required; borrowed
    // Where client connections run: spread round robin over this pool's
    // contexts (borrowed; it must outlive the server's run). Null: on the
    // io_context passed to Create().
    IoContextPool* connection_contexts = nullptr;
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
  // Bytes held by connections not yet authenticated (see Options).
  uint64_t unauthenticated_bytes() const;
  // Connections refused (503 + close) at accept: over max_connections, the
  // per-client cap or the unauthenticated-memory budget.
  uint64_t refused_connections() const;
  // accept() calls that failed (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...).
  uint64_t accept_failures() const;

  struct State;  // shared with sessions (internal)

 private:
  HttpServer(std::shared_ptr<State> state, uint16_t port);

  std::shared_ptr<State> state_;
  uint16_t port_;
};

}  // namespace sluice::http
