// Internal to the front door: one client connection. See http_server.h for
// the behaviour; this header exists so the listener and the session can
// live in files of their own.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "common/clock.h"
#include "http/http_server.h"

namespace sluice::http {

class Session;

// Concrete executor types (no any_io_executor type erasure on the hot path).
using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using StrandSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Strand>;

struct HttpServer::State {
  Options options;
  boost::asio::io_context& ioc;
  boost::asio::ip::tcp::acceptor acceptor;
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> in_progress{0};
  // Open sessions, for the timeout sweep. Touched on connect, close and
  // sweep only — never per request.
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions;  // GUARDED_BY(sessions_mu)
  explicit State(boost::asio::io_context& io) : ioc(io), acceptor(io) {}
};

class Session : public std::enable_shared_from_this<Session>, private ClientWatch {
 public:
  Session(StrandSocket&& socket, std::shared_ptr<HttpServer::State> state);
  ~Session();

  void Run();        // serve requests until the peer or a limit closes
  void RunReject();  // over the connection cap: answer 503 and close

  // Timeouts. Instead of a timer per read and write (costly at tens of
  // thousands of requests per second), each session keeps a deadline and the
  // server's sweep closes sessions whose deadline passed (see
  // http_server.cc); the close cancels the pending operation.
  // Closes the connection if its deadline passed. Any thread.
  void CloseIfExpired(TimePoint now);

 private:
  void DoRead();
  void OnHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  void OnRequest();
  void FailRead(boost::beast::error_code ec);
  void Write(HttpResponse&& response);
  void Write(WireResponse&& response);
  void OnWrite(bool keep_alive, boost::beast::error_code ec);
  void Close();
  // While a reply is awaited: notices the client closing the connection
  // (EOF or reset on an otherwise idle socket) and runs the registered
  // OnClientGone() callback. Pipelined bytes stop the watch (they are left
  // for the parser).
  void WatchClient();
  void OnClientReadable(boost::beast::error_code ec);
  void OnClientGone(std::function<void()> fn) override;  // ClientWatch
  void ExpireAfter(int64_t ms);                          // deadline = now + ms
  void NoDeadline();                                     // while a handler works on the request

  StrandSocket socket_;
  std::atomic<int64_t> deadline_ns_{0};  // steady-clock ns; 0 = none
  std::list<std::weak_ptr<Session>>::iterator registry_it_;
  bool registered_ = false;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<HttpServer::State> state_;
  // Header fields of the request being read; released before each request.
  alignas(std::max_align_t) char arena_buffer_[2048];
  std::pmr::monotonic_buffer_resource arena_{arena_buffer_, sizeof(arena_buffer_)};
  std::optional<bhttp::request_parser<bhttp::string_body, RequestAllocator>> parser_;
  std::string write_buffer_;      // the response being written, serialized
  bool counted_request_ = false;  // in_progress holds this session's request
  bool awaiting_reply_ = false;   // on the strand: a request is being handled
  bool watch_pending_ = false;    // on the strand: an async_wait is outstanding
  std::mutex gone_mu_;
  std::function<void()> on_gone_;  // GUARDED_BY(gone_mu_); for the current request
};

}  // namespace sluice::http
