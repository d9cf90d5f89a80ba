// LoadConnection: one keep-alive HTTP/1.1 client connection of a load
// thread, with at most one request in flight (no pipelining).
//
// Its owner drives it — Connect(); then, each time it is ready, fill
// request_buffer() and Send() — and hears back through Listener. Callbacks
// run from the io_context's handlers, never inline from Connect()/Send().
// No timeouts of its own: the load run bounds every request (the drain
// timeout), and the owner closes what is left.
//
// Thread-safety: none; it belongs to one io_context run by one thread.
// Ownership: owned by its LoadWorker; destroy it only once its io_context has
// stopped running (handlers hold a raw pointer to it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sluice::loadgen {

class LoadConnection {
 public:
  struct Response {
    int status = 0;
    bool keep_alive = true;  // false: the server closes; reopen before the next request
    double gateway_ms = -1;  // Server-Timing `gateway;dur=`; < 0 when absent
    // When the header arrived (with time_header; else unset): for a
    // streamed answer, its first piece.
    std::optional<std::chrono::steady_clock::time_point> header_at;
  };

  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnConnected(LoadConnection* c) = 0;
    virtual void OnConnectFailed(LoadConnection* c, const boost::system::error_code& ec) = 0;
    virtual void OnResponse(LoadConnection* c, const Response& response) = 0;
    // The request in flight failed. `nothing_received`: not one byte of a
    // response had arrived (e.g. the server had closed an idle connection).
    virtual void OnRequestFailed(LoadConnection* c, const boost::system::error_code& ec,
                                 bool nothing_received) = 0;
  };

  static constexpr uint64_t kResponseBodyLimitBytes = 16 << 20;

  // `listener` is borrowed and must outlive the connection.
  // `time_header`: read each response's header first and note when it
  // arrived (Response::header_at); costs one more read per response.
  LoadConnection(boost::asio::io_context& ioc, boost::asio::ip::tcp::endpoint endpoint,
                 Listener* listener, size_t id, bool time_header = false);

  // Opens a new socket (closing any old one). Calls OnConnected or
  // OnConnectFailed.
  void Connect();
  // The request text Send() writes; fill it first.
  std::string* request_buffer() { return &request_; }
  // REQUIRES: connected, nothing in flight. Calls OnResponse or
  // OnRequestFailed.
  void Send();
  // Closes the socket; a pending operation completes with an error that is
  // not reported (no listener call after Close()).
  void Close();

  size_t id() const { return id_; }
  // Requests sent on the current socket (0 right after Connect()).
  uint64_t requests_on_socket() const { return requests_on_socket_; }

 private:
  void OnWrite(const boost::system::error_code& ec);
  void OnRead(const boost::system::error_code& ec);
  void ReadBody();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::endpoint endpoint_;
  Listener* listener_;
  size_t id_;
  bool time_header_ = false;
  std::optional<std::chrono::steady_clock::time_point> header_at_;
  uint64_t generation_ = 0;  // bumped by Close(): stale handlers see a mismatch
  uint64_t requests_on_socket_ = 0;
  std::string request_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
};

// The `<name>;dur=` value (milliseconds) of a Server-Timing header (Sluice
// sends queue, accelerator and gateway); < 0 when absent or malformed.
double ParseServerTimingMs(std::string_view server_timing, std::string_view name);

}  // namespace sluice::loadgen
