// The real `sluice model-server` process on loopback, driven by every HTTP
// backend adapter: each protocol round-trips a batch (outputs equal the
// simulator's, in input order, over a reused keep-alive connection), and the
// injected faults reach the adapter as the errors the dispatcher expects.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "backends/http/http_backend.h"
#include "backends/sim/sim_model.h"
#include "modelserver/model_server_process.h"

namespace sluice {
namespace {

namespace asio = boost::asio;
using http_backend::HttpBackend;
using http_backend::ProtocolKind;
using ::testing::HasSubstr;

constexpr char kModel[] = "m1";

std::vector<RequestPtr> Batch(size_t n, int max_tokens = 6) {
  std::vector<RequestPtr> batch;
  for (size_t i = 0; i < n; ++i) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = "input number " + std::to_string(i);
    r->params.max_tokens = max_tokens;
    batch.push_back(r);
  }
  return batch;
}

class ModelServerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<modelserver::testing::ModelServerProcess>(
        SLUICE_BINARY, std::vector<std::string>{"--model", kModel, "--model-version", "m1-2026",
                                                "--devices", "2", "--fixed-latency-us", "2000",
                                                "--per-item-latency-us", "100", "--seed", "7"});
    ASSERT_TRUE(server_->Start().ok());
    io_thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    backends_.clear();
    guard_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  HttpBackend& Backend(ProtocolKind protocol, int64_t request_timeout_ms = 5'000) {
    HttpBackend::Options o;
    o.protocol = protocol;
    o.url = server_->url();
    o.model = kModel;
    o.model_version = "configured-version";
    o.request_timeout_ms = request_timeout_ms;
    o.io_context = &ioc_;
    auto b = HttpBackend::Create(o);
    EXPECT_TRUE(b.ok()) << b.status().message();
    backends_.push_back(std::move(b.value()));
    return *backends_.back();
  }

  static BatchResult Run(sluice::Backend& backend, const std::vector<RequestPtr>& batch) {
    std::promise<BatchResult> p;
    backend.RunBatch(batch, [&p](BatchResult&& r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  void SetFaults(const std::string& json) {
    http_backend::HttpConnection::Options o;
    o.endpoint = http_backend::ParseEndpointUrl(server_->url()).value();
    auto c = std::move(http_backend::HttpConnection::Create(ioc_, o).value());
    std::promise<Result<http_backend::HttpReply>> p;
    c->Post("/admin/faults", json, [&p](auto r) { p.set_value(std::move(r)); });
    auto reply = p.get_future().get();
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ASSERT_EQ(reply->status, 200) << reply->body;
  }

  static void ExpectSimOutputs(const BatchResult& r, const std::vector<RequestPtr>& batch) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    ASSERT_EQ(r.items.size(), batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      auto expected = sim::SimulateCompletion(kModel, batch[i]->input, batch[i]->params.max_tokens);
      EXPECT_TRUE(r.items[i].status.ok());
      EXPECT_EQ(r.items[i].output, expected.output) << "item " << i;
    }
  }

  std::unique_ptr<modelserver::testing::ModelServerProcess> server_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{ioc_.get_executor()};
  std::thread io_thread_;
  std::vector<std::unique_ptr<HttpBackend>> backends_;
};

TEST_F(ModelServerIntegrationTest, GenericProtocolRoundTrips) {
  HttpBackend& backend = Backend(ProtocolKind::kGeneric);
  for (size_t n : {1u, 32u}) {  // the second batch reuses the connection
    auto batch = Batch(n);
    batch.back()->params.max_tokens = 2;  // per-item parameters travel
    BatchResult r = Run(backend, batch);
    ExpectSimOutputs(r, batch);
    EXPECT_EQ(r.model_version, "m1-2026");
    EXPECT_EQ(
        r.items[0].tokens_used,
        sim::SimulateCompletion(kModel, batch[0]->input, batch[0]->params.max_tokens).tokens_used);
  }
}

TEST_F(ModelServerIntegrationTest, OpenAiCompletionsAndEmbeddingsRoundTrip) {
  auto batch = Batch(5);
  BatchResult r = Run(Backend(ProtocolKind::kOpenAiCompletions), batch);
  ExpectSimOutputs(r, batch);
  EXPECT_EQ(r.model_version, "configured-version");
  BatchResult e = Run(Backend(ProtocolKind::kOpenAiEmbeddings), batch);
  ASSERT_TRUE(e.status.ok()) << e.status.message();
  ASSERT_EQ(e.items.size(), 5u);
  EXPECT_EQ(boost::json::parse(e.items[0].output).as_array().size(), 8u);
  EXPECT_NE(e.items[0].output, e.items[1].output);
}

TEST_F(ModelServerIntegrationTest, KServeRoundTrips) {
  auto batch = Batch(7);
  batch[3]->params.max_tokens = 1;
  BatchResult r = Run(Backend(ProtocolKind::kKServe), batch);
  ExpectSimOutputs(r, batch);
  EXPECT_EQ(r.model_version, "m1-2026");
}

TEST_F(ModelServerIntegrationTest, ErrorRateOneFailsTheWholeBatch) {
  SetFaults(R"({"error_rate":1})");
  for (ProtocolKind p : {ProtocolKind::kGeneric, ProtocolKind::kKServe}) {
    BatchResult r = Run(Backend(p), Batch(3));
    EXPECT_EQ(r.status.code(), ErrorCode::kBackendError);
    EXPECT_THAT(r.status.message(), HasSubstr("HTTP 500: injected batch failure"));
  }
}

TEST_F(ModelServerIntegrationTest, ItemErrorsFailOnlyThoseItems) {
  SetFaults(R"({"item_error_rate":0.5})");
  auto batch = Batch(24);
  BatchResult r = Run(Backend(ProtocolKind::kGeneric), batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.items.size(), batch.size());
  int failed = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!r.items[i].status.ok()) {
      ++failed;
      EXPECT_EQ(r.items[i].status.code(), ErrorCode::kBackendError);
      EXPECT_THAT(r.items[i].status.message(), HasSubstr("injected item failure"));
    } else {
      EXPECT_EQ(r.items[i].output, sim::SimulateCompletion(kModel, batch[i]->input, 6).output);
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, 24);
}

TEST_F(ModelServerIntegrationTest, HungServerTimesOutWithinTheRequestTimeout) {
  SetFaults(R"({"hang":true})");
  HttpBackend& backend = Backend(ProtocolKind::kGeneric, /*request_timeout_ms=*/300);
  const auto start = std::chrono::steady_clock::now();
  BatchResult r = Run(backend, Batch(2));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_THAT(r.status.message(), HasSubstr("timed out after 300 ms"));
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(1'500));
  // The slot is usable again once the server heals.
  SetFaults(R"({"hang":false})");
  auto batch = Batch(2);
  ExpectSimOutputs(Run(backend, batch), batch);
}

TEST_F(ModelServerIntegrationTest, ClosedConnectionAndUnknownModelAreBatchErrors) {
  SetFaults(R"({"close_connection":true})");
  BatchResult r = Run(Backend(ProtocolKind::kOpenAiCompletions), Batch(2));
  EXPECT_EQ(r.status.code(), ErrorCode::kBackendError);
  SetFaults(R"({"close_connection":false})");
  HttpBackend::Options o;
  o.url = server_->url();
  o.model = "other-model";
  o.io_context = &ioc_;
  auto wrong = HttpBackend::Create(o);
  ASSERT_TRUE(wrong.ok());
  r = Run(*wrong.value(), Batch(1));
  EXPECT_EQ(r.status.code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.status.message(), HasSubstr("HTTP 404: unknown model"));
}

}  // namespace
}  // namespace sluice
