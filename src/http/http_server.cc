#include "http/http_server.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cerrno>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/io_context_pool.h"
#include "http/session.h"

namespace sluice::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Result<std::unique_ptr<HttpServer>> HttpServer::Create(asio::io_context& ioc,
                                                       const Options& options) {
  if (options.handler == nullptr) return InvalidArgument("http server needs a handler");
  if (options.max_connections < 1) return InvalidArgument("max_connections must be >= 1");
  if (options.max_connections_per_client < 0) {
    return InvalidArgument("max_connections_per_client must be >= 0");
  }
  if (options.max_header_fields < 1) return InvalidArgument("max_header_fields must be >= 1");
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.listen_address, ec);
  if (ec) return InvalidArgument("bad listen address '" + options.listen_address + "'");
  auto state = std::make_shared<State>(ioc);
  state->options = options;
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = state->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + options.listen_address + ":" +
                       std::to_string(options.port) + ": " + ec.message());
  }
  uint16_t port = acceptor.local_endpoint().port();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(state), port));
}

HttpServer::HttpServer(std::shared_ptr<State> state, uint16_t port)
    : state_(std::move(state)), port_(port) {}

HttpServer::~HttpServer() { StopAccepting(); }

namespace {
bool OutOfResources(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

// Why a new connection is refused (503 + close), or null to serve it.
// Counts it under its address when admitted and capped per client.
const char* RefusalFor(HttpServer::State& state, const std::string& client) {
  const auto& o = state.options;
  if (state.open_connections.load(std::memory_order_relaxed) >=
      static_cast<size_t>(o.max_connections)) {
    return "too many open connections; retry shortly";
  }
  if (state.unauthenticated_bytes.load(std::memory_order_relaxed) >
      o.unauthenticated_memory_limit_bytes) {
    return "too many connections waiting to authenticate; retry shortly";
  }
  if (!client.empty()) {
    std::lock_guard lock(state.clients_mu);
    int& n = state.per_client[client];
    if (n >= o.max_connections_per_client) {
      return "too many open connections from this address; retry shortly";
    }
    ++n;
  }
  return nullptr;
}

void AcceptLoop(std::shared_ptr<HttpServer::State> state);

// After accept() failed for want of descriptors or memory: wait, then accept
// again (a failing accept re-armed at once would spin and flood the log).
void AcceptLater(std::shared_ptr<HttpServer::State> state, const boost::system::error_code& ec) {
  const uint64_t failures = state->accept_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (state->accept_warnings.Allow()) {
    spdlog::warn("accept failed: {} ({} failures so far); backing off {} ms", ec.message(),
                 failures, state->options.accept_backoff_ms);
  }
  auto timer = std::make_shared<asio::steady_timer>(state->acceptor.get_executor());
  timer->expires_after(Millis(state->options.accept_backoff_ms));
  timer->async_wait([state, timer](boost::system::error_code) {
    if (state->acceptor.is_open()) AcceptLoop(state);
  });
}

// The accept loop holds only the shared state, so it may outlive the server.
void AcceptLoop(std::shared_ptr<HttpServer::State> state) {
  // Each connection runs on the context it is placed on (one thread each).
  IoContextPool* pool = state->options.connection_contexts;
  asio::io_context& home = pool != nullptr ? pool->NextForConnection() : state->ioc;
  auto socket = std::make_shared<ConnectionSocket>(home.get_executor());
  state->acceptor.async_accept(*socket, [state, socket](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) return;
    if (ec) {
      if (OutOfResources(ec)) return AcceptLater(state, ec);
      spdlog::warn("accept failed: {}", ec.message());
      return AcceptLoop(state);
    }
    socket->set_option(tcp::no_delay(true), ec);
    std::string client;
    if (state->options.max_connections_per_client > 0) {
      auto remote = socket->remote_endpoint(ec);
      if (!ec) client = remote.address().to_string();
    }
    const char* refusal = RefusalFor(*state, client);
    auto session = std::make_shared<Session>(std::move(*socket), state,
                                             refusal == nullptr ? client : std::string());
    if (refusal != nullptr) {
      state->refused_connections.fetch_add(1, std::memory_order_relaxed);
      session->RunReject(refusal);
    } else {
      session->Run();
    }
    AcceptLoop(state);
  });
}

// Closes connections whose read, write or idle deadline passed. One timer
// for the whole server, so per-request I/O arms no timers at all; a
// deadline is enforced within one sweep interval.
void SweepLoop(std::shared_ptr<HttpServer::State> state,
               std::shared_ptr<asio::steady_timer> timer) {
  int64_t shortest = std::min(state->options.read_timeout_ms, state->options.idle_timeout_ms);
  auto interval = Millis(std::clamp<int64_t>(shortest / 10, 5, 250));
  timer->expires_after(interval);
  timer->async_wait([state, timer](boost::system::error_code ec) {
    // Runs until the io_context stops, also while draining.
    if (ec) return;
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(state->sessions_mu);
      live.reserve(state->sessions.size());
      for (auto& w : state->sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    TimePoint now = SteadyClock::now();
    for (auto& s : live) s->CloseIfExpired(now);
    SweepLoop(state, timer);
  });
}

}  // namespace

void HttpServer::Start() {
  asio::dispatch(state_->acceptor.get_executor(), [state = state_] { AcceptLoop(state); });
  SweepLoop(state_, std::make_shared<asio::steady_timer>(state_->ioc));
}

void HttpServer::StopAccepting() {
  asio::dispatch(state_->acceptor.get_executor(), [state = state_] {
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
  });
}

size_t HttpServer::open_connections() const {
  return state_->open_connections.load(std::memory_order_relaxed);
}

size_t HttpServer::requests_in_progress() const {
  return state_->in_progress.load(std::memory_order_relaxed);
}

uint64_t HttpServer::unauthenticated_bytes() const {
  return state_->unauthenticated_bytes.load(std::memory_order_relaxed);
}

uint64_t HttpServer::refused_connections() const {
  return state_->refused_connections.load(std::memory_order_relaxed);
}

uint64_t HttpServer::accept_failures() const {
  return state_->accept_failures.load(std::memory_order_relaxed);
}

}  // namespace sluice::http
