#include "loadgen/load_connection.h"

#include <charconv>
#include <system_error>

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

namespace sluice::loadgen {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

double ParseServerTimingMs(std::string_view header, std::string_view name) {
  // Entries are `name;dur=X` separated by commas; find the one named.
  size_t pos = 0;
  while (pos < header.size()) {
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == ',')) ++pos;
    const size_t end = std::min(header.find(',', pos), header.size());
    std::string_view entry = header.substr(pos, end - pos);
    pos = end;
    if (!entry.starts_with(name) || entry.substr(name.size(), 1) != ";") continue;
    const size_t dur = entry.find("dur=");
    if (dur == std::string_view::npos) return -1;
    entry.remove_prefix(dur + 4);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    double ms = -1;
    const auto [p, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), ms);
    if (ec != std::errc() || p != entry.data() + entry.size() || ms < 0) return -1;
    return ms;
  }
  return -1;
}

LoadConnection::LoadConnection(asio::io_context& ioc, asio::ip::tcp::endpoint endpoint,
                               Listener* listener, size_t id, bool time_header)
    : socket_(ioc), endpoint_(endpoint), listener_(listener), id_(id), time_header_(time_header) {}

void LoadConnection::Connect() {
  Close();
  requests_on_socket_ = 0;
  buffer_.clear();
  const uint64_t gen = generation_;
  socket_.async_connect(endpoint_, [this, gen](const error_code& ec) {
    if (gen != generation_) return;
    if (ec) return listener_->OnConnectFailed(this, ec);
    error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    listener_->OnConnected(this);
  });
}

void LoadConnection::Send() {
  ++requests_on_socket_;
  const uint64_t gen = generation_;
  asio::async_write(socket_, asio::buffer(request_), [this, gen](const error_code& ec, size_t) {
    if (gen != generation_) return;
    OnWrite(ec);
  });
}

void LoadConnection::OnWrite(const error_code& ec) {
  if (ec) return listener_->OnRequestFailed(this, ec, /*nothing_received=*/true);
  parser_.emplace();
  parser_->body_limit(kResponseBodyLimitBytes);
  header_at_.reset();
  if (!time_header_) return ReadBody();
  const uint64_t gen = generation_;
  bhttp::async_read_header(socket_, buffer_, *parser_, [this, gen](const error_code& ec, size_t) {
    if (gen != generation_) return;
    if (ec) return OnRead(ec);
    header_at_ = std::chrono::steady_clock::now();
    ReadBody();
  });
}

void LoadConnection::ReadBody() {
  const uint64_t gen = generation_;
  bhttp::async_read(socket_, buffer_, *parser_, [this, gen](const error_code& ec, size_t) {
    if (gen != generation_) return;
    OnRead(ec);
  });
}

void LoadConnection::OnRead(const error_code& ec) {
  if (ec) return listener_->OnRequestFailed(this, ec, !parser_->got_some());
  const auto& res = parser_->get();
  Response r;
  r.status = static_cast<int>(res.result_int());
  r.keep_alive = res.keep_alive();
  r.header_at = header_at_;
  if (r.status == 200) {
    if (auto it = res.find("Server-Timing"); it != res.end()) {
      r.gateway_ms = ParseServerTimingMs(it->value(), "gateway");
    }
  }
  parser_.reset();
  listener_->OnResponse(this, r);
}

void LoadConnection::Close() {
  ++generation_;
  if (socket_.is_open()) {
    error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
}

}  // namespace sluice::loadgen
