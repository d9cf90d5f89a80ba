#include "backends/http/http_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace sluice::http_backend {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<Endpoint> ParseEndpointUrl(const std::string& url) {
  Endpoint e;
  e.url = url;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    e.tls = true;
    rest = url.substr(8);
  } else {
    return InvalidArgument("endpoint `" + url + "`: expected an http:// or https:// URL");
  }
  if (rest.find_first_of("?#@ ") != std::string::npos) {
    return InvalidArgument("endpoint `" + url + "`: no userinfo, query or fragment allowed");
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  std::string port;
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return InvalidArgument("endpoint `" + url + "`: bad IPv6 host");
    e.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return InvalidArgument("endpoint `" + url + "`: bad host");
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return InvalidArgument("endpoint `" + url + "`: no host");
  if (port.empty()) port = e.tls ? "443" : "80";
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return InvalidArgument("endpoint `" + url + "`: bad port `" + port + "`");
  }
  e.port = port;
  return e;
}

Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(const TlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return InvalidArgument("TLS client certificate and key must be given together");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (options.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(options.ca_file, ec);
    if (ec) return InvalidArgument("TLS CA file `" + options.ca_file + "`: " + ec.message());
  }
  if (!options.cert_file.empty()) {
    ctx->use_certificate_chain_file(options.cert_file, ec);
    if (ec) return InvalidArgument("TLS certificate `" + options.cert_file + "`: " + ec.message());
    ctx->use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
    if (ec) return InvalidArgument("TLS key `" + options.key_file + "`: " + ec.message());
  }
  ctx->set_verify_mode(options.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none, ec);
  return ctx;
}

struct HttpConnection::Impl : std::enable_shared_from_this<Impl> {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  Impl(asio::io_context& ioc, Options o)
      : options(std::move(o)), strand(asio::make_strand(ioc)), resolver(strand), timer(strand) {}

  // --- state, touched only on `strand` ---
  const Options options;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::resolver resolver;
  asio::steady_timer timer;  // bounds name resolution
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<TlsStream> tls;
  bool connected = false;
  bool resolve_timed_out = false;
  bool resolving = false;
  bool reused = false;  // the current request went out on an already open connection
  std::chrono::steady_clock::time_point connect_deadline;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
  ReplyFn done;
  ProgressFn progress;  // set: the reply is read as it arrives

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  template <typename F>
  void WithStream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }
  std::string Where() const { return options.endpoint.host + ":" + options.endpoint.port; }

  void Start(std::string target, std::string body, ProgressFn on_progress, ReplyFn fn,
             const std::string& traceparent) {
    done = std::move(fn);
    progress = std::move(on_progress);
    request = {};
    request.method(http::verb::post);
    request.target(target);
    request.version(11);
    request.set(http::field::host, options.endpoint.host);
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, progress ? "text/event-stream" : "application/json");
    request.set(http::field::user_agent, "sluice");
    if (!traceparent.empty()) request.set("traceparent", traceparent);
    request.keep_alive(true);
    request.body() = std::move(body);
    request.prepare_payload();
    reused = connected;
    if (connected) return Send();
    Connect();
  }

  void Connect() {
    Reset();
    plain = std::make_unique<beast::tcp_stream>(strand);
    if (options.endpoint.tls) {
      tls = std::make_unique<TlsStream>(std::move(*plain), *options.tls);
      plain.reset();
    }
    connect_deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
    resolve_timed_out = false;
    resolving = true;
    timer.expires_at(connect_deadline);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->resolving) return;  // resolution finished first
      self->resolve_timed_out = true;
      self->resolver.cancel();
    });
    resolver.async_resolve(
        options.endpoint.host, options.endpoint.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          self->resolving = false;
          self->timer.cancel();
          if (self->resolve_timed_out) return self->Fail(beast::error::timeout, "resolve");
          if (ec) return self->Fail(ec, "resolve");
          self->lowest().expires_at(self->connect_deadline);
          self->lowest().async_connect(
              results, [self](beast::error_code ec, const tcp::endpoint&) { self->OnConnect(ec); });
        });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail(ec, "connect");
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if (!tls) {
      connected = true;
      return Send();
    }
    if (!SSL_set_tlsext_host_name(tls->native_handle(), options.endpoint.host.c_str())) {
      return Fail(
          beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
          "TLS SNI");
    }
    tls->set_verify_callback(asio::ssl::host_name_verification(options.endpoint.host));
    tls->async_handshake(asio::ssl::stream_base::client,
                         [self = shared_from_this()](beast::error_code ec) {
                           if (ec) return self->Fail(ec, "TLS handshake");
                           self->connected = true;
                           self->Send();
                         });
  }

  void Send() {
    lowest().expires_after(std::chrono::milliseconds(options.request_timeout_ms));
    WithStream([this](auto& stream) {
      http::async_write(stream, request, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->Fail(ec, "write");
        self->Read();
      });
    });
  }

  void Read() {
    parser.emplace();
    parser->body_limit(options.body_limit_bytes);
    if (progress) return ReadSome();
    WithStream([this](auto& stream) {
      http::async_read(
          stream, buffer, *parser,
          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
    });
  }

  // A streamed reply: each read hands the body so far to `progress`.
  void ReadSome() {
    WithStream([this](auto& stream) {
      http::async_read_some(
          stream, buffer, *parser,
          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnReadSome(ec); });
    });
  }

  void OnReadSome(beast::error_code ec) {
    if (ec) return Fail(ec, "read");
    if (parser->is_header_done() && parser->get().result_int() / 100 == 2 &&
        !progress(parser->get().body())) {
      Reset();
      return Deliver(Status(ErrorCode::kCancelled, "the request was abandoned"));
    }
    if (parser->is_done()) return OnRead(ec);
    lowest().expires_after(std::chrono::milliseconds(options.request_timeout_ms));
    ReadSome();
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail(ec, "read");
    http::response<http::string_body> response = parser->release();
    parser.reset();
    if (!response.keep_alive()) Reset();
    HttpReply reply{static_cast<int>(response.result_int()), std::move(response.body())};
    Deliver(std::move(reply));
  }

  void Fail(beast::error_code ec, const char* what) {
    const bool timeout = ec == beast::error::timeout;
    // A keep-alive connection the server closed while idle: try once afresh.
    const bool stale = reused && !timeout && ec != asio::error::operation_aborted &&
                       (!parser || !parser->got_some());
    Reset();
    if (stale) {
      reused = false;
      return Connect();
    }
    if (timeout) {
      const bool connecting = std::string_view(what) != "write" && std::string_view(what) != "read";
      const int64_t ms = connecting ? options.connect_timeout_ms : options.request_timeout_ms;
      return Deliver(DeadlineExceeded(std::string(connecting ? "connect to " : "request to ") +
                                      options.endpoint.url + " timed out after " +
                                      std::to_string(ms) + " ms"));
    }
    if (ec == asio::error::operation_aborted) {
      return Deliver(Unavailable("connection to " + options.endpoint.url + " was closed"));
    }
    Deliver(BackendError(std::string(what) + " " + options.endpoint.url + " (" + Where() +
                         "): " + ec.message()));
  }

  void Deliver(Result<HttpReply> result) {
    if (!done) return;
    ReplyFn fn = std::move(done);
    done = nullptr;
    progress = nullptr;
    fn(std::move(result));
  }

  // Drops the socket (no graceful TLS shutdown: the peer sees a close).
  void Reset() {
    connected = false;
    buffer.clear();
    beast::error_code ignored;
    if (tls || plain) {
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
  }

  void CloseNow() {
    timer.cancel();
    resolver.cancel();
    Reset();
  }
};

Result<std::unique_ptr<HttpConnection>> HttpConnection::Create(asio::io_context& ioc,
                                                               Options options) {
  if (options.connect_timeout_ms <= 0 || options.request_timeout_ms <= 0) {
    return InvalidArgument("HTTP connection timeouts must be > 0");
  }
  if (options.endpoint.host.empty()) return InvalidArgument("HTTP connection needs a host");
  if (options.endpoint.tls && !options.tls) {
    return InvalidArgument("https endpoint " + options.endpoint.url + " needs a TLS context");
  }
  auto impl = std::make_shared<Impl>(ioc, std::move(options));
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Post(std::string target, std::string body, ReplyFn done,
                          std::string traceparent) {
  PostStreaming(std::move(target), std::move(body), nullptr, std::move(done),
                std::move(traceparent));
}

void HttpConnection::PostStreaming(std::string target, std::string body, ProgressFn progress,
                                   ReplyFn done, std::string traceparent) {
  asio::post(impl_->strand, [impl = impl_, target = std::move(target), body = std::move(body),
                             progress = std::move(progress), done = std::move(done),
                             traceparent = std::move(traceparent)]() mutable {
    impl->Start(std::move(target), std::move(body), std::move(progress), std::move(done),
                traceparent);
  });
}

void HttpConnection::Close() {
  asio::post(impl_->strand, [impl = impl_] { impl->CloseNow(); });
}

}  // namespace sluice::http_backend
