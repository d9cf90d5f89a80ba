// Where HttpServer runs its connections: spread over an IoContextPool's
// event loops (one thread each), or on the listener's io_context.
#include "http/http_server.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "common/io_context_pool.h"
#include "common/thread_name.h"
#include "testing/http_client.h"

namespace sluice::http {
namespace {

// Answers every request with the name of the thread that handled it.
class ThreadNameHandler final : public RequestHandler {
 public:
  void Handle(HttpRequest&& request, Reply reply) override {
    HttpResponse res(bhttp::status::ok, request.version());
    res.body() = CurrentThreadName();
    res.prepare_payload();
    reply(std::move(res));
  }
};

class HttpServerPlacementTest : public ::testing::Test {
 protected:
  // Starts a server on pool_.main() (connections over the pool when
  // `spread`) and runs the pool on a thread named "pool-runner".
  void Start(bool spread) {
    HttpServer::Options o;
    o.port = 0;
    o.handler = &handler_;
    if (spread) o.connection_contexts = &pool_;
    auto server = HttpServer::Create(pool_.main(), o);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    server_->Start();
    runner_ = std::thread([this] {
      SetCurrentThreadName("pool-runner");
      pool_.Run();
    });
  }
  void TearDown() override {
    if (server_) server_->StopAccepting();
    pool_.Stop();
    if (runner_.joinable()) runner_.join();
    server_.reset();
  }
  std::string HandledOn(testing::HttpClient& client) {
    auto r = client.Get("/");
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->body : std::string();
  }

  IoContextPool pool_{2};  // outlives the server (declared first)
  ThreadNameHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
};

TEST_F(HttpServerPlacementTest, ConnectionsTakeTurnsOverThePoolAndKeepTheirThread) {
  Start(/*spread=*/true);
  testing::HttpClient first(server_->port()), second(server_->port());
  EXPECT_EQ(HandledOn(first), "pool-runner");  // main(): the thread that runs the pool
  EXPECT_EQ(HandledOn(second), "sluice-io-1");
  // Keep-alive requests stay on their connection's loop.
  EXPECT_EQ(HandledOn(first), "pool-runner");
  EXPECT_EQ(HandledOn(second), "sluice-io-1");
  testing::HttpClient third(server_->port());
  EXPECT_EQ(HandledOn(third), "pool-runner");
}

TEST_F(HttpServerPlacementTest, WithoutAPoolEveryConnectionRunsOnTheListenersContext) {
  Start(/*spread=*/false);
  testing::HttpClient first(server_->port()), second(server_->port());
  EXPECT_EQ(HandledOn(first), "pool-runner");
  EXPECT_EQ(HandledOn(second), "pool-runner");
}

}  // namespace
}  // namespace sluice::http
