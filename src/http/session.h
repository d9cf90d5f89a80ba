// Internal to the front door: one client connection. See http_server.h for
// the behaviour; this header exists so the listener and the session can
// live in files of their own.
#pragma once

#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>

#include "common/clock.h"
#include "common/log_throttle.h"
#include "http/http_server.h"
#include "http/request_parser.h"

namespace sluice::http {

class Session;

// Concrete executor types (no any_io_executor type erasure on the hot path).
// A connection's handlers are serialized by its io_context, which exactly
// one thread runs (HttpServer's contract), so no strand is needed.
using ConnectionExecutor = boost::asio::io_context::executor_type;
using ConnectionSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, ConnectionExecutor>;

struct HttpServer::State {
  Options options;
  boost::asio::io_context& ioc;
  boost::asio::ip::tcp::acceptor acceptor;
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> in_progress{0};
  std::atomic<uint64_t> unauthenticated_bytes{0};
  std::atomic<uint64_t> refused_connections{0};
  std::atomic<uint64_t> accept_failures{0};
  // Open connections per client address (only with max_connections_per_client).
  std::mutex clients_mu;
  std::unordered_map<std::string, int> per_client;  // GUARDED_BY(clients_mu)
  LogThrottle accept_warnings;                      // "accept failed", once per 10 s
  // Open sessions, for the timeout sweep. Touched on connect, close and
  // sweep only — never per request.
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions;  // GUARDED_BY(sessions_mu)
  explicit State(boost::asio::io_context& io) : ioc(io), acceptor(io) {}
};

// Counts what a connection's header arena takes beyond its inline buffer.
class CountingResource final : public std::pmr::memory_resource {
 public:
  size_t bytes() const { return bytes_; }

 private:
  void* do_allocate(size_t n, size_t align) override {
    bytes_ += n;
    return std::pmr::new_delete_resource()->allocate(n, align);
  }
  void do_deallocate(void* p, size_t n, size_t align) override {
    bytes_ -= n;
    std::pmr::new_delete_resource()->deallocate(p, n, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
  size_t bytes_ = 0;
};

class Session : public std::enable_shared_from_this<Session>, private ClientWatch {
 public:
  // `client` is the peer's address ("" when unknown); the session counts
  // itself in state->per_client under it when non-empty.
  Session(ConnectionSocket&& socket, std::shared_ptr<HttpServer::State> state, std::string client);
  ~Session();

  void Run();                       // serve requests until the peer or a limit closes
  void RunReject(const char* why);  // over a connection cap: answer 503 and close

  // Timeouts. Instead of a timer per read and write (costly at tens of
  // thousands of requests per second), each session keeps a deadline and the
  // server's sweep closes sessions whose deadline passed (see
  // http_server.cc); the close cancels the pending operation.
  // Closes the connection if its deadline passed. Any thread.
  void CloseIfExpired(TimePoint now);

 private:
  void Register();  // in state->sessions, for the timeout sweep
  void DoRead();
  void ReadHeader();
  void OnHeaderPart(boost::beast::error_code ec, size_t bytes);
  void OnHeader();
  void Refuse(HttpResponse&& response);  // answer from the header alone, then close
  // Re-counts this connection's bytes in state->unauthenticated_bytes
  // (0 once authenticated or closed).
  void Recharge(bool authenticated);
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  void OnRequest();
  void FailRead(boost::beast::error_code ec);
  void Write(HttpResponse&& response);
  void Write(WireResponse&& response);
  void OnWrite(bool keep_alive, boost::beast::error_code ec);
  void OnPartWritten(boost::beast::error_code ec);  // a streamed part (not the last)
  void ClientGone();                                // runs the OnClientGone() callback, then closes
  void Close();
  void Linger();  // after a refusal: drain (bounded), then close
  void DrainLinger();
  // While a reply is awaited: notices the client closing the connection
  // (EOF or reset on an otherwise idle socket) and runs the registered
  // OnClientGone() callback. Pipelined bytes stop the watch (they are left
  // for the parser).
  void WatchClient();
  void OnClientReadable(boost::beast::error_code ec);
  void OnClientGone(std::function<void()> fn) override;  // ClientWatch
  void ExpireAfter(int64_t ms);                          // deadline = now + ms
  void NoDeadline();                                     // while a handler works on the request

  ConnectionSocket socket_;
  std::atomic<int64_t> deadline_ns_{0};  // steady-clock ns; 0 = none
  std::list<std::weak_ptr<Session>>::iterator registry_it_;
  bool registered_ = false;
  std::shared_ptr<HttpServer::State> state_;
  const std::string client_;  // peer address, for the per-client cap
  boost::beast::flat_buffer buffer_;
  // Header fields of the request being read; released before each request.
  alignas(std::max_align_t) char arena_buffer_[2048];
  CountingResource arena_upstream_;
  std::pmr::monotonic_buffer_resource arena_{arena_buffer_, sizeof(arena_buffer_),
                                             &arena_upstream_};
  std::optional<RequestParser> parser_;
  std::string write_buffer_;     // the response being written, serialized
  uint64_t charged_bytes_ = 0;   // this session's share of unauthenticated_bytes
  bool authenticated_ = false;   // a request on this connection was authenticated
  bool header_started_ = false;  // bytes of the current request have arrived
  bool peer_closed_ = false;     // the client half-closed: answer, then close
  bool close_after_write_ = false;
  bool linger_after_write_ = false;  // the refused request's body was left unread
  int bad_requests_ = 0;
  size_t lingered_bytes_ = 0;
  char linger_scratch_[1024];
  bool counted_request_ = false;  // in_progress holds this session's request
  // These three: on the connection's thread only.
  bool awaiting_reply_ = false;     // a request is being handled
  bool watch_pending_ = false;      // an async_wait is outstanding
  bool in_handler_ = false;         // inside the handler's Handle() call
  bool streaming_ = false;          // a streamed response's first part was written
  bool part_in_flight_ = false;     // a streamed part is being written
  std::deque<WireResponse> parts_;  // streamed parts waiting for the one in flight
  // Any thread.
  std::mutex gone_mu_;
  std::function<void()> on_gone_;  // GUARDED_BY(gone_mu_); for the current request
};

}  // namespace sluice::http
