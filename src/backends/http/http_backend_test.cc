// HttpBackend with the OpenAI completions protocol against a loopback server
// that records every call: a batch whose items ask for different parameters
// becomes one call per parameter set, each with exactly its group's values,
// the results land on the right items, and a failed call fails the batch.

#include "backends/http/http_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace sluice::http_backend {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;

// What the server answers for one prompt: the prompt and the parameters the
// call carried, so a test sees which call served which item.
std::string Answer(std::string_view prompt, const json::object& call) {
  const json::value* t = call.if_contains("temperature");
  return std::string(prompt) + " max_tokens=" + json::serialize(call.at("max_tokens")) +
         " temperature=" + (t ? json::serialize(*t) : std::string("none"));
}

// A one-thread OpenAI completions server on loopback, one connection at a
// time. A call with the prompt "fail" gets HTTP 500. Choices come back in
// reverse order (they are mapped by "index").
class RecordingServer {
 public:
  RecordingServer() : acceptor_(ioc_, {asio::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingServer() {
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
  std::vector<json::object> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

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
    beast::flat_buffer buffer;
    while (!stop_) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(s, buffer, req, ec);
      if (ec) return;
      json::object call = json::parse(req.body()).as_object();
      {
        std::lock_guard lock(mu_);
        calls_.push_back(call);
      }
      const json::array& prompts = call.at("prompt").as_array();
      bool fail = false;
      json::array choices;
      for (size_t i = prompts.size(); i-- > 0;) {
        fail = fail || prompts[i].as_string() == "fail";
        choices.push_back(
            json::object{{"index", i}, {"text", Answer(prompts[i].as_string(), call)}});
      }
      http::response<http::string_body> res{
          fail ? http::status::internal_server_error : http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(true);
      res.body() = fail ? R"({"error":"boom"})"
                        : json::serialize(json::object{{"model", "m1"}, {"choices", choices}});
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec) return;
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  tcp::socket* current_ = nullptr;   // GUARDED_BY(mu_): the connection being served
  std::vector<json::object> calls_;  // GUARDED_BY(mu_)
  std::atomic<int> connections_{0};
  std::thread thread_;
};

RequestPtr Item(const char* input, int max_tokens, std::optional<double> temperature) {
  auto r = std::make_shared<InferenceRequest>();
  r->input = input;
  r->params.max_tokens = max_tokens;
  r->params.temperature = temperature;
  return r;
}

class HttpBackendTest : public ::testing::Test {
 protected:
  HttpBackendTest() : guard_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~HttpBackendTest() override {
    backend_.reset();
    guard_.reset();
    thread_.join();
  }

  void Connect(uint16_t port) {
    HttpBackend::Options o;
    o.protocol = ProtocolKind::kOpenAiCompletions;
    o.url = "http://127.0.0.1:" + std::to_string(port);
    o.model = "m1";
    o.model_version = "v1";
    o.io_context = &ioc_;
    auto made = HttpBackend::Create(o);
    ASSERT_TRUE(made.ok()) << made.status().message();
    backend_ = std::move(made).value();
  }

  BatchResult Run(const std::vector<RequestPtr>& batch) {
    std::promise<BatchResult> p;
    backend_->RunBatch(batch, [&p](BatchResult&& r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<HttpBackend> backend_;
};

TEST_F(HttpBackendTest, OneCallPerParameterSetEachWithItsOwnValues) {
  RecordingServer server;
  Connect(server.port());
  std::vector<RequestPtr> batch = {Item("a", 16, 0.2), Item("b", 4096, 0.9), Item("c", 16, 0.2),
                                   Item("d", 4096, 0.9), Item("e", 16, std::nullopt)};
  BatchResult r = Run(batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();

  const std::vector<json::object> calls = server.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].at("prompt"), (json::array{"a", "c"}));
  EXPECT_EQ(calls[0].at("max_tokens"), 16);
  EXPECT_EQ(calls[0].at("temperature"), 0.2);
  EXPECT_EQ(calls[1].at("prompt"), (json::array{"b", "d"}));
  EXPECT_EQ(calls[1].at("max_tokens"), 4096);
  EXPECT_EQ(calls[1].at("temperature"), 0.9);
  EXPECT_EQ(calls[2].at("prompt"), (json::array{"e"}));
  EXPECT_EQ(calls[2].at("max_tokens"), 16);
  EXPECT_EQ(calls[2].if_contains("temperature"), nullptr);
  EXPECT_EQ(server.connections(), 1);  // one after another on the slot's connection

  ASSERT_EQ(r.items.size(), batch.size());
  const size_t call_of[] = {0, 1, 0, 1, 2};
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::string expected = Answer(batch[i]->input, calls[call_of[i]]);
    EXPECT_TRUE(r.items[i].status.ok());
    EXPECT_EQ(r.items[i].output, expected) << "item " << i;
    // Charged for its own input and output only.
    EXPECT_EQ(r.items[i].tokens_used, 1 + (expected.size() + 3) / 4) << "item " << i;
  }
  EXPECT_EQ(r.model_version, "v1");
}

TEST_F(HttpBackendTest, OneParameterSetIsExactlyOneCall) {
  RecordingServer server;
  Connect(server.port());
  std::vector<RequestPtr> batch = {Item("a", 64, 0.5), Item("b", 64, 0.5), Item("c", 64, 0.5)};
  BatchResult r = Run(batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(server.calls().size(), 1u);
  EXPECT_EQ(server.calls()[0].at("prompt"), (json::array{"a", "b", "c"}));
  EXPECT_EQ(r.items[2].output, "c max_tokens=64 temperature=" + json::serialize(json::value(0.5)));
}

TEST_F(HttpBackendTest, AFailedCallFailsTheBatchAndStopsTheRest) {
  RecordingServer server;
  Connect(server.port());
  std::vector<RequestPtr> batch = {Item("a", 16, std::nullopt), Item("fail", 32, std::nullopt),
                                   Item("c", 48, std::nullopt)};
  BatchResult r = Run(batch);
  EXPECT_EQ(r.status.code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.status.message(), HasSubstr("HTTP 500: boom"));
  EXPECT_THAT(r.status.message(), HasSubstr("openai:http://127.0.0.1:"));
  EXPECT_TRUE(r.items.empty());
  EXPECT_EQ(server.calls().size(), 2u);  // the third group was never sent

  // The slot is free again and the connection still usable.
  BatchResult again = Run({Item("z", 16, std::nullopt)});
  ASSERT_TRUE(again.status.ok()) << again.status.message();
  EXPECT_EQ(server.calls().size(), 3u);
}

}  // namespace
}  // namespace sluice::http_backend
