// HttpConnection over https against a loopback TLS server whose
// certificates the test makes with the openssl command: the server is
// verified with the configured CA file (and its host name), an unknown CA
// fails the handshake with a clear error, and a server that requires a
// client certificate (mTLS) is reached only with tls_cert_file/tls_key_file.

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "backends/http/http_connection.h"

namespace sluice::http_backend {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;

// A CA, a server certificate for localhost/127.0.0.1 and a client
// certificate signed by it, plus an unrelated CA; in a temp dir.
class Certificates {
 public:
  Certificates() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-tls-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return;
    dir_ = tmpl;
    const std::string d = dir_;
    const std::string script =
        "set -e; cd '" + d + "'; exec >openssl.log 2>&1\n" +
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n"
        "for ca in ca other; do openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
        "-subj /CN=$ca -keyout $ca.key -out $ca.pem; done\n"
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
        "-out server.csr\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.pem\n"
        "openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key "
        "-out client.csr\n"
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-out client.pem\n";
    ok_ = std::system(("bash -c \"" + Escape(script) + "\"").c_str()) == 0;
  }
  ~Certificates() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  static std::string Escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '$' || c == '\\' || c == '`') out += '\\';
      out += c;
    }
    return out;
  }
  std::string dir_;
  bool ok_ = false;
};

// Serves one TLS connection at a time on loopback; answers every request
// 200 {"ok":true} on a keep-alive connection.
class TlsServer {
 public:
  TlsServer(const Certificates& certs, bool require_client_cert)
      : ctx_(ssl::context::tls_server), acceptor_(ioc_, {tcp::v4(), 0}) {
    ctx_.use_certificate_chain_file(certs.Path("server.pem"));
    ctx_.use_private_key_file(certs.Path("server.key"), ssl::context::pem);
    if (require_client_cert) {
      ctx_.load_verify_file(certs.Path("ca.pem"));
      ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    boost::system::error_code ec;
    {
      std::lock_guard lock(mu_);  // wake a read on a kept-alive connection
      if (current_ != nullptr) current_->shutdown(tcp::socket::shutdown_both, ec);
    }
    tcp::socket poke(ioc_);
    poke.connect({asio::ip::address_v4::loopback(), port()}, ec);  // unblock accept()
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int handshakes_ok() const { return handshakes_ok_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      ssl::stream<tcp::socket> s(ioc_, ctx_);
      boost::system::error_code ec;
      acceptor_.accept(s.next_layer(), ec);
      if (ec || stop_) return;
      {
        std::lock_guard lock(mu_);
        current_ = &s.next_layer();
      }
      Session(s);
      std::lock_guard lock(mu_);
      current_ = nullptr;
    }
  }

  void Session(ssl::stream<tcp::socket>& s) {
    boost::system::error_code ec;
    {
      s.handshake(ssl::stream_base::server, ec);
      if (ec) return;  // the client refused us, or we refused the client
      ++handshakes_ok_;
      asio::streambuf buf;
      for (int i = 0; i < 100 && !stop_; ++i) {  // requests on this connection
        size_t n = asio::read_until(s, buf, "\r\n\r\n", ec);
        if (ec) break;
        buf.consume(n);
        if (buf.size() < 2) asio::read(s, buf, asio::transfer_exactly(2 - buf.size()), ec);
        buf.consume(2);  // the body, "{}"
        const std::string body = R"({"ok":true})";
        asio::write(s,
                    asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body),
                    ec);
        if (ec) break;
      }
    }
  }

  asio::io_context ioc_;
  ssl::context ctx_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_ok_{0};
  std::mutex mu_;
  tcp::socket* current_ = nullptr;  // GUARDED_BY(mu_): the connection being served
  std::thread thread_;
};

TlsOptions Tls(std::string ca, std::string cert = "", std::string key = "") {
  TlsOptions o;
  o.ca_file = std::move(ca);
  o.cert_file = std::move(cert);
  o.key_file = std::move(key);
  return o;
}

class TlsConnectionTest : public ::testing::Test {
 protected:
  TlsConnectionTest() : guard_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TlsConnectionTest() override {
    connection_.reset();
    guard_.reset();
    thread_.join();
  }

  // Connects to https://<host>:port with `tls`; a fatal failure on bad options.
  void Connect(const std::string& host, uint16_t port, const TlsOptions& tls) {
    auto ctx = MakeTlsContext(tls);
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    HttpConnection::Options o;
    o.endpoint = ParseEndpointUrl("https://" + host + ":" + std::to_string(port)).value();
    o.tls = std::move(ctx).value();
    auto c = HttpConnection::Create(ioc_, o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    connection_ = std::move(c).value();
  }

  Result<HttpReply> Post() {
    std::promise<Result<HttpReply>> p;
    connection_->Post("/v1/batch", "{}", [&p](Result<HttpReply> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  Certificates certs_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<HttpConnection> connection_;
};

TEST_F(TlsConnectionTest, HttpsRoundTripsWithTheConfiguredCa) {
  ASSERT_TRUE(certs_.ok()) << "openssl could not make the test certificates";
  TlsServer server(certs_, /*require_client_cert=*/false);
  ASSERT_NO_FATAL_FAILURE(Connect("localhost", server.port(), Tls(certs_.Path("ca.pem"))));
  for (int i = 0; i < 3; ++i) {  // keep-alive: one handshake
    auto r = Post();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, R"({"ok":true})");
  }
  EXPECT_EQ(server.handshakes_ok(), 1);
}

TEST_F(TlsConnectionTest, AServerSignedByAnotherCaIsRefused) {
  ASSERT_TRUE(certs_.ok());
  TlsServer server(certs_, false);
  ASSERT_NO_FATAL_FAILURE(Connect("localhost", server.port(), Tls(certs_.Path("other.pem"))));
  auto r = Post();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsConnectionTest, MutualTlsNeedsTheClientCertificate) {
  ASSERT_TRUE(certs_.ok());
  TlsServer server(certs_, /*require_client_cert=*/true);
  ASSERT_NO_FATAL_FAILURE(Connect("127.0.0.1", server.port(), Tls(certs_.Path("ca.pem"))));
  auto refused = Post();
  EXPECT_FALSE(refused.ok());
  ASSERT_NO_FATAL_FAILURE(
      Connect("127.0.0.1", server.port(),
              Tls(certs_.Path("ca.pem"), certs_.Path("client.pem"), certs_.Path("client.key"))));
  auto r = Post();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace sluice::http_backend
