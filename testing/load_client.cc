#include "testing/load_client.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

http::request<http::string_body> Prepare(const LoadRequest& r, uint16_t port) {
  http::request<http::string_body> req;
  http::verb verb = http::string_to_verb(r.method);
  if (verb == http::verb::unknown) {
    req.method_string(r.method);
  } else {
    req.method(verb);
  }
  req.target(r.target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "sluice-load-client");
  bool has_content_type = false;
  for (const auto& [name, value] : r.headers) {
    if (Lower(name) == "content-type") has_content_type = true;
    req.insert(name, value);
  }
  if (!r.body.empty() && !has_content_type) {
    req.set(http::field::content_type, "application/json");
  }
  req.body() = r.body;
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

}  // namespace

// One client connection: at most one request in flight.
struct LoadClient::Connection {
  explicit Connection(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  size_t current = 0;  // index of the request in flight
  bool busy = false;   // a request is in flight
  SteadyClock::time_point started;
};

// All state of one run; touched only by the io thread (except the counters).
struct LoadClient::State {
  State(LoadClient& owner, LoadOptions opts, std::vector<LoadRequest> reqs)
      : owner(owner), options(opts), deadline(ioc) {
    prepared.reserve(reqs.size());
    for (const LoadRequest& r : reqs) prepared.push_back(Prepare(r, options.port));
    results.resize(reqs.size());
  }

  LoadClient& owner;
  LoadOptions options;
  std::vector<http::request<http::string_body>> prepared;
  std::vector<LoadResult> results;
  asio::io_context ioc;
  asio::steady_timer deadline;
  std::vector<std::unique_ptr<Connection>> connections;
  size_t next = 0;        // first request not yet taken by a connection
  size_t finished = 0;    // requests with a result
  size_t connecting = 0;  // connections still in their first connect
  size_t live = 0;        // connections that may still take requests
  bool timed_out = false;
  std::string last_connect_error;

  tcp::endpoint endpoint() const {
    return tcp::endpoint(asio::ip::address_v4::loopback(), options.port);
  }

  void Begin() {
    if (prepared.empty()) return;
    deadline.expires_after(options.timeout);
    deadline.async_wait([this](beast::error_code ec) {
      if (!ec) OnTimeout();
    });
    size_t n = std::max<size_t>(1, options.connections);
    connecting = n;
    for (size_t i = 0; i < n; ++i) {
      connections.push_back(std::make_unique<Connection>(ioc));
      Connection* c = connections.back().get();
      c->socket.async_connect(endpoint(), [this, c](beast::error_code ec) {
        if (ec) {
          last_connect_error = ec.message();
          CloseSocket(*c);
        } else {
          ++live;
          owner.connections_open_.fetch_add(1);
        }
        if (--connecting == 0) StartSending();
      });
    }
  }

  // Phase two: every connection attempt is over; all open ones send at once.
  void StartSending() {
    if (timed_out) return FailUnsent("timeout before sending");
    if (live == 0) return FailUnsent("no connection could be opened: " + last_connect_error);
    for (auto& c : connections) {
      if (c->socket.is_open()) SendNext(*c);
    }
  }

  void SendNext(Connection& c) {
    if (timed_out || next >= prepared.size()) return Retire(c);
    c.current = next++;
    c.busy = true;
    c.parser.emplace();
    c.parser->body_limit(64ull << 20);
    c.started = SteadyClock::now();
    http::async_write(c.socket, prepared[c.current],
                      [this, &c](beast::error_code ec, size_t) { OnWrite(c, ec); });
  }

  void OnWrite(Connection& c, beast::error_code ec) {
    if (ec) return FailCurrent(c, "write: " + ec.message());
    owner.requests_sent_.fetch_add(1);
    http::async_read(c.socket, c.buffer, *c.parser,
                     [this, &c](beast::error_code ec, size_t) { OnRead(c, ec); });
  }

  void OnRead(Connection& c, beast::error_code ec) {
    if (ec) return FailCurrent(c, "read: " + ec.message());
    http::response<http::string_body> res = c.parser->release();
    LoadResult& out = results[c.current];
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      auto [it, inserted] =
          out.headers.emplace(Lower(field.name_string()), std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    out.body = std::move(res.body());
    out.latency =
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - c.started);
    c.busy = false;
    owner.responses_received_.fetch_add(1);
    ++finished;
    if (res.keep_alive()) return SendNext(c);
    // The server closed this connection; open a new one for the next request.
    CloseSocket(c);
    if (timed_out || next >= prepared.size()) return Retire(c);
    c.buffer.clear();
    c.socket = tcp::socket(ioc);
    c.socket.async_connect(endpoint(), [this, &c](beast::error_code ec) {
      if (ec) return Retire(c);
      SendNext(c);
    });
  }

  void FailCurrent(Connection& c, std::string error) {
    results[c.current].error = timed_out ? "timeout (" + error + ")" : std::move(error);
    c.busy = false;
    ++finished;
    Retire(c);
  }

  // The connection takes no more requests.
  void Retire(Connection& c) {
    CloseSocket(c);
    if (live > 0) --live;
    if (live == 0 && next < prepared.size()) {
      FailUnsent(timed_out ? "timeout before sending" : "every connection was closed");
    }
    MaybeFinish();
  }

  void FailUnsent(const std::string& error) {
    for (; next < prepared.size(); ++next) {
      results[next].error = error;
      ++finished;
    }
    MaybeFinish();
  }

  void MaybeFinish() {
    if (finished < prepared.size()) return;
    deadline.cancel();
    for (auto& c : connections) CloseSocket(*c);
  }

  void OnTimeout() {
    timed_out = true;
    deadline.cancel();  // also when called early by the destructor
    // Closing aborts every pending operation; the handlers record the failures.
    for (auto& c : connections) CloseSocket(*c);
  }

  static void CloseSocket(Connection& c) {
    beast::error_code ignored;
    if (c.socket.is_open()) {
      c.socket.shutdown(tcp::socket::shutdown_both, ignored);
      c.socket.close(ignored);
    }
  }
};

LoadClient::LoadClient(LoadOptions options, std::vector<LoadRequest> requests)
    : state_(std::make_unique<State>(*this, options, std::move(requests))) {}

LoadClient::~LoadClient() {
  if (thread_.joinable()) {
    asio::post(state_->ioc, [s = state_.get()] { s->OnTimeout(); });
    thread_.join();
  }
}

void LoadClient::Start() {
  state_->Begin();
  thread_ = std::thread([s = state_.get()] { s->ioc.run(); });
}

std::vector<LoadResult> LoadClient::Wait() {
  if (thread_.joinable()) thread_.join();
  return std::move(state_->results);
}

std::vector<LoadResult> LoadClient::Run(LoadOptions options, std::vector<LoadRequest> requests) {
  LoadClient client(options, std::move(requests));
  client.Start();
  return client.Wait();
}

}  // namespace sluice::testing
