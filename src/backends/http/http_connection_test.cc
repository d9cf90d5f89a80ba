// HttpConnection against a scripted loopback server: keep-alive reuse, the
// request timeout on a server that never answers, a refused connection, and
// one transparent retry when the server dropped an idle keep-alive socket.
// Also ParseEndpointUrl() and TLS context errors.

#include "backends/http/http_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

namespace sluice::http_backend {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;

TEST(ParseEndpointUrlTest, SplitsSchemeHostPortAndPath) {
  Endpoint e = ParseEndpointUrl("http://127.0.0.1:9000/v1/batch/").value();
  EXPECT_FALSE(e.tls);
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, "9000");
  EXPECT_EQ(e.base_path, "/v1/batch");
  e = ParseEndpointUrl("https://gpu.internal").value();
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.port, "443");
  EXPECT_EQ(e.base_path, "");
  e = ParseEndpointUrl("http://[::1]:81").value();
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, "81");
  EXPECT_FALSE(ParseEndpointUrl("ftp://x").ok());
  EXPECT_FALSE(ParseEndpointUrl("http://:80").ok());
  EXPECT_FALSE(ParseEndpointUrl("http://h:99999").ok());
  EXPECT_FALSE(ParseEndpointUrl("http://h:8x").ok());
  EXPECT_FALSE(ParseEndpointUrl("http://u@h").ok());
}

TEST(MakeTlsContextTest, NamesTheMissingFile) {
  TlsOptions missing_ca;
  missing_ca.ca_file = "/nonexistent/ca.pem";
  auto ctx = MakeTlsContext(missing_ca);
  ASSERT_FALSE(ctx.ok());
  EXPECT_THAT(ctx.status().message(), HasSubstr("/nonexistent/ca.pem"));
  TlsOptions cert_without_key;
  cert_without_key.cert_file = "cert.pem";
  EXPECT_FALSE(MakeTlsContext(cert_without_key).ok());
  EXPECT_TRUE(MakeTlsContext(TlsOptions{}).ok());
}

// What the scripted server does with each request it reads.
enum class Script { kAnswerKeepAlive, kAnswerThenClose, kNeverAnswer };

// A one-thread loopback server that accepts connections one after another.
class ScriptedServer {
 public:
  explicit ScriptedServer(Script script) : script_(script), acceptor_(ioc_, {tcp::v4(), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    boost::system::error_code ec;
    {
      std::lock_guard lock(mu_);
      if (current_ != nullptr) current_->shutdown(tcp::socket::shutdown_both, ec);
    }
    tcp::socket poke(ioc_);
    poke.connect({asio::ip::address_v4::loopback(), port()}, ec);  // unblock accept()
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      ++connections_;
      {
        std::lock_guard lock(mu_);
        current_ = &s;
      }
      Session(s);
      std::lock_guard lock(mu_);
      current_ = nullptr;
    }
  }

  void Session(tcp::socket& s) {
    boost::system::error_code ec;
    {
      asio::streambuf buf;
      while (!stop_) {
        size_t n = asio::read_until(s, buf, "\r\n\r\n", ec);
        if (ec) break;
        buf.consume(n);
        // The client's body is always "{}".
        if (buf.size() < 2) asio::read(s, buf, asio::transfer_exactly(2 - buf.size()), ec);
        buf.consume(2);
        ++requests_;
        if (script_ == Script::kNeverAnswer) {
          std::this_thread::sleep_for(std::chrono::milliseconds(400));
          break;
        }
        const std::string body = "{\"n\":" + std::to_string(requests_.load()) + "}";
        asio::write(s,
                    asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body),
                    ec);
        if (script_ == Script::kAnswerThenClose) break;  // drops the socket silently
      }
    }
  }

  const Script script_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  tcp::socket* current_ = nullptr;  // GUARDED_BY(mu_): the connection being served
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class HttpConnectionTest : public ::testing::Test {
 protected:
  HttpConnectionTest() : guard_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~HttpConnectionTest() override {
    connection_.reset();
    guard_.reset();
    thread_.join();
  }

  void Connect(uint16_t port, int64_t request_timeout_ms = 2'000) {
    HttpConnection::Options o;
    o.endpoint = ParseEndpointUrl("http://127.0.0.1:" + std::to_string(port)).value();
    o.request_timeout_ms = request_timeout_ms;
    connection_ = std::move(HttpConnection::Create(ioc_, o).value());
  }

  Result<HttpReply> Post() {
    std::promise<Result<HttpReply>> p;
    connection_->Post("/x", "{}", [&p](Result<HttpReply> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<HttpConnection> connection_;
};

TEST_F(HttpConnectionTest, ReusesTheKeepAliveConnection) {
  ScriptedServer server(Script::kAnswerKeepAlive);
  Connect(server.port());
  for (int i = 1; i <= 3; ++i) {
    Result<HttpReply> r = Post();
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"n\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(HttpConnectionTest, RetriesOnceWhenAnIdleConnectionWasDropped) {
  ScriptedServer server(Script::kAnswerThenClose);
  Connect(server.port());
  ASSERT_TRUE(Post().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // server has closed by now
  Result<HttpReply> r = Post();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(HttpConnectionTest, ServerThatNeverAnswersTimesOut) {
  ScriptedServer server(Script::kNeverAnswer);
  Connect(server.port(), /*request_timeout_ms=*/150);
  const auto start = std::chrono::steady_clock::now();
  Result<HttpReply> r = Post();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("timed out after 150 ms"));
  EXPECT_LT(took, std::chrono::milliseconds(2'000));  // the server never answers
}

TEST_F(HttpConnectionTest, RefusedConnectionIsABackendError) {
  uint16_t port = 0;
  {
    ScriptedServer server(Script::kAnswerKeepAlive);
    port = server.port();
  }  // closed: nothing listens there now
  Connect(port);
  Result<HttpReply> r = Post();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.status().message(), HasSubstr("connect"));
}

}  // namespace
}  // namespace sluice::http_backend
