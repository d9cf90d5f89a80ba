// Failure handling through the gateway, with real `sluice model-server`
// processes behind it on loopback: a killed endpoint loses no request, an
// endpoint that fails every batch opens its circuit breaker and is used
// again once it heals, per-item errors fail only their items, a hung backend
// answers 504 within the deadline and leaks nothing, exhausted retries land
// in the dead-letter queue with 502, and a client that hangs up while queued
// is dropped before the accelerator.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

#include "tests/integration/model_servers_fixture.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// Model-servers behind the gateway (model_servers_fixture.h).
class BackendFailuresTest : public ModelServersTest {};

TEST_F(BackendFailuresTest, KillingOneOfTwoEndpointsUnderLoadLosesNoRequest) {
  StartModelServer({});
  StartModelServer({});
  ASSERT_NO_FATAL_FAILURE(StartSluice(HttpConfig({})));
  constexpr size_t kRequests = 3'000;
  LoadClient load({.port = port(), .connections = 200, .timeout = milliseconds(60'000)},
                  Requests(kRequests, "kill-"));
  load.Start();
  // Kill endpoint 0 once a third of the answers are in: batches in flight
  // on it fail (connection reset) and are retried on endpoint 1.
  ASSERT_TRUE(
      PollUntil([&] { return load.responses_received() >= kRequests / 3; }, milliseconds(30'000)));
  servers_[0]->Kill();
  EXPECT_EQ(Completions(load.Wait(), "kill-"), kRequests);
  auto client = NewClient();
  EXPECT_EQ(BreakerOf(*client, servers_[0]->url() + "/v1/batch"), "open");
  EXPECT_EQ(BreakerOf(*client, servers_[1]->url() + "/v1/batch"), "closed");
  EXPECT_GE(Counter(*client, "sluice_circuit_breaker_opened_total",
                    {{"endpoint", servers_[0]->url() + "/v1/batch"}}),
            1);
  EXPECT_EQ(Counter(*client, "sluice_dead_letters_total"), 0);
}

TEST_F(BackendFailuresTest, FailingEndpointOpensItsBreakerAndRecoversAfterItHeals) {
  StartModelServer({});
  StartModelServer({});
  ASSERT_NO_FATAL_FAILURE(StartSluice(HttpConfig({.cooldown_ms = 200})));
  const std::string bad = servers_[0]->url() + "/v1/batch";
  SetFaults(0, R"({"error_rate":1})");
  auto client = NewClient();
  // Every request succeeds (retried on the healthy endpoint) while the
  // failing one's breaker opens.
  for (int round = 0; round < 10; ++round) {
    std::vector<LoadResult> results =
        LoadClient::Run({.port = port(), .connections = 16, .timeout = milliseconds(20'000)},
                        Requests(32, "heal-" + std::to_string(round) + "-"));
    for (size_t i = 0; i < results.size(); ++i) {
      ASSERT_EQ(results[i].status, 200) << results[i].body << results[i].error;
    }
    if (BreakerOf(*client, bad) == "open") break;
  }
  EXPECT_EQ(BreakerOf(*client, bad), "open");
  boost::json::value m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "healthy_devices"), 2) << boost::json::serialize(m);
  EXPECT_GT(Counter(*client, "sluice_batch_retry_requests_total"), 0);

  // Healed: after the cooldown a probe batch succeeds and the breaker closes.
  SetFaults(0, R"({"error_rate":0})");
  int round = 0;
  bool closed = PollUntil(
      [&] {
        std::vector<LoadResult> results =
            LoadClient::Run({.port = port(), .connections = 8, .timeout = milliseconds(10'000)},
                            Requests(16, "probe-" + std::to_string(round++) + "-"));
        for (const auto& r : results) EXPECT_EQ(r.status, 200) << r.body;
        return BreakerOf(*client, bad) == "closed";
      },
      milliseconds(10'000), milliseconds(50));
  EXPECT_TRUE(closed);
  m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "healthy_devices"), 4) << boost::json::serialize(m);
}

TEST_F(BackendFailuresTest, AnOutageOfTheOnlyBackendIsRefusedAtOnceAndServingResumesAfter) {
  // One endpoint, one connection, admission on, the default breaker
  // (1 s cooldown, no doubling): the issue's "restart is a permanent
  // outage" case, where admission refused the probe that would close it.
  StartModelServer({});
  TestConfig config =
      HttpConfig({.connections_per_endpoint = 1, .cooldown_ms = 1'000, .max_cooldown_ms = 1'000});
  config.admission = true;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  auto monitor = NewClient();
  const std::string endpoint = servers_[0]->url() + "/v1/batch";
  struct Sample {
    std::chrono::steady_clock::time_point at;
    int status;
    std::string body;
  };
  // Sends one paid request every 20 ms for `duration`; returns what came back.
  auto drive = [&](milliseconds duration, const std::string& prefix) {
    std::vector<Sample> out;
    const auto end = std::chrono::steady_clock::now() + duration;
    for (int i = 0; std::chrono::steady_clock::now() < end && i < 1'000; ++i) {
      Result<Response> r = client->Post(
          "/v1/inference", InferenceBody(kModel, prefix + std::to_string(i)), {Bearer(kPaidKey)});
      out.push_back({std::chrono::steady_clock::now(), r.ok() ? r->status : -1,
                     r.ok() ? r->body : r.status().ToString()});
      std::this_thread::sleep_for(milliseconds(20));  // pacing, not synchronisation
    }
    return out;
  };
  for (const Sample& s : drive(milliseconds(500), "before-")) ASSERT_EQ(s.status, 200) << s.body;

  // Down for 3 s: every batch fails. Requests are answered at once: 502 for
  // a batch that failed every retry, 503 backends_unavailable while the
  // breaker is open — never left to time out.
  SetFaults(0, R"({"error_rate":1})");
  std::vector<Sample> down = drive(milliseconds(3'000), "down-");
  size_t refused = 0;
  for (const Sample& s : down) {
    EXPECT_NE(s.status, 504) << s.body;
    EXPECT_TRUE(s.status == 200 || s.status == 502 || s.status == 503) << s.status << s.body;
    if (s.status == 503) {
      EXPECT_TRUE(IsError(s.status, s.body, 503, "unavailable")) << s.body;
      ++refused;
    }
  }
  EXPECT_GT(refused, down.size() / 2) << "the open breaker did not refuse at once";
  EXPECT_NE(BreakerOf(*monitor, endpoint), "closed");

  // Back: within the cooldown plus a batch the probe closes the breaker and
  // every request is served again.
  SetFaults(0, R"({"error_rate":0})");
  const auto healed = std::chrono::steady_clock::now();
  std::vector<Sample> after = drive(milliseconds(4'000), "after-");
  size_t first_ok = after.size();
  for (size_t i = 0; i < after.size(); ++i) {
    if (after[i].status == 200) {
      first_ok = i;
      break;
    }
  }
  ASSERT_LT(first_ok, after.size()) << "never served again after the backend returned";
  const auto resumed_ms =
      std::chrono::duration_cast<milliseconds>(after[first_ok].at - healed).count();
  std::cerr << "[ restart ] " << refused << "/" << down.size()
            << " refused at once during the outage; served again " << resumed_ms
            << " ms after the backend returned\n";
  for (size_t i = first_ok; i < after.size(); ++i) {
    EXPECT_EQ(after[i].status, 200) << "request " << i << " after recovery: " << after[i].body;
  }
  EXPECT_EQ(BreakerOf(*monitor, endpoint), "closed");
  boost::json::value m = ModelHealth(Health(*monitor));
  EXPECT_EQ(NumberField(m, "healthy_devices"), 1.0) << boost::json::serialize(m);
}

TEST_F(BackendFailuresTest, PerItemErrorsFailOnlyTheirItems) {
  StartModelServer({.extra_args = {"--item-error-rate", "0.3"}});
  ASSERT_NO_FATAL_FAILURE(StartSluice(HttpConfig({})));
  std::vector<LoadResult> results = LoadClient::Run(
      {.port = port(), .connections = 64, .timeout = milliseconds(20'000)}, Requests(256, "item-"));
  size_t ok = 0, failed = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].status == 200) {
      ++ok;
      EXPECT_TRUE(IsCompletion(results[i].status, results[i].body, "item-" + std::to_string(i),
                               kDefaultMaxTokens));
    } else {
      ++failed;
      EXPECT_TRUE(IsError(results[i].status, results[i].body, 502, "backend_error"))
          << results[i].body;
    }
  }
  EXPECT_GT(ok, 100u);
  EXPECT_GT(failed, 20u);
  auto client = NewClient();
  EXPECT_EQ(Counter(*client, "sluice_batch_retry_requests_total"), 0);  // answers, not failures
}

TEST_F(BackendFailuresTest, HungBackendAnswers504WithinTheDeadlineAndLeaksNothing) {
  StartModelServer({.extra_args = {"--hang"}});
  TestConfig config = HttpConfig({.connections_per_endpoint = 1, .request_timeout_ms = 3'000});
  config.total_timeout_ms = 800;
  config.max_queue_age_ms = 700;
  config.latency_budget_ms = 700;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  auto start = std::chrono::steady_clock::now();
  auto r = client->Post("/v1/inference", InferenceBody(kModel, "hung"), {Bearer(kPaidKey)});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(IsError(*r, 504, "deadline_exceeded")) << r->body;
  // At the request's deadline (800 ms), not the backend's 3 s timeout.
  EXPECT_LT(took, milliseconds(2'500));
  EXPECT_GE(took, milliseconds(700));

  // Nothing leaks: once the server answers again the slot comes back (its
  // connection timed out and reconnects) and requests succeed.
  SetFaults(0, R"({"hang":false})");
  bool served = PollUntil(
      [&] {
        auto again =
            client->Post("/v1/inference", InferenceBody(kModel, "after"), {Bearer(kPaidKey)});
        return again.ok() && again->status == 200;
      },
      milliseconds(8'000), milliseconds(100));
  EXPECT_TRUE(served);
  boost::json::value m = ModelHealth(Health(*client));
  EXPECT_EQ(NumberField(m, "queue_depth"), 0);
  EXPECT_EQ(NumberField(m, "retries_pending"), 0);
}

TEST_F(BackendFailuresTest, ExhaustedRetriesGoToTheDeadLetterQueueAndAnswer502) {
  StartModelServer({.extra_args = {"--error-rate", "1"}});
  ASSERT_NO_FATAL_FAILURE(StartSluice(HttpConfig({.consecutive_failures = 100})));
  auto client = NewClient();
  auto r = client->Post("/v1/inference", InferenceBody(kModel, "doomed"), {Bearer(kPaidKey)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(IsError(*r, 502, "backend_error")) << r->body;
  EXPECT_NE(ErrorMessage(r->body).find("failed after 3 attempts"), std::string::npos) << r->body;
  // The client reads what happened to its request, never where: no backend
  // name, URL or address, nor the backend's own words.
  const std::string url = servers_[0]->url();
  for (const std::string& internal :
       {url, std::string("127.0.0.1"), std::string("http:"), std::string("inference API")}) {
    EXPECT_EQ(r->body.find(internal), std::string::npos) << internal << " in " << r->body;
  }
  std::string id = ErrorRequestId(r->body);
  // Operators get the detail: in the request log ...
  boost::json::value record = WaitForFinalRecord(*client, id);
  const std::string logged = StringField(record, "error").value_or("");
  EXPECT_NE(logged.find("failed after 3 attempts"), std::string::npos) << logged;
  EXPECT_NE(logged.find(url), std::string::npos) << logged;

  auto dlq = client->Get("/internal/dead-letters?limit=5", {Bearer(kServiceToken)});
  ASSERT_TRUE(dlq.ok());
  ASSERT_EQ(dlq->status, 200) << dlq->body;
  boost::json::value body = dlq->Json();
  EXPECT_EQ(NumberField(body, "size"), 1) << dlq->body;
  const auto& entry = body.at("entries").at(0);
  EXPECT_EQ(StringField(entry, "request_id"), id);
  EXPECT_EQ(StringField(entry, "input"), "doomed");
  EXPECT_EQ(NumberField(entry, "attempts"), 3);
  // ... and in the dead-letter entry.
  EXPECT_NE(StringField(entry, "last_error").value_or("").find(url), std::string::npos)
      << dlq->body;
  EXPECT_EQ(Counter(*client, "sluice_dead_letters_total"), 1);
  EXPECT_EQ(Counter(*client, "sluice_batch_retry_requests_total"), 2);

  auto bad = client->Get("/internal/dead-letters?limit=x", {Bearer(kServiceToken)});
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(IsError(*bad, 400, "invalid_request")) << bad->body;
  auto anonymous = client->Get("/internal/dead-letters");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
}

namespace asio = boost::asio;

// Sends one inference request, then aborts the connection (RST: an orderly
// close cannot be told from a half-close, which is still answered).
void SendAndHangUp(uint16_t port, const std::string& input) {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  SendInference(socket, port, input);
  socket.set_option(asio::socket_base::linger(true, 0));
  socket.close();
}

// Sends one inference request, half-closes (shutdown of the write side) and
// reads the answer to the end.
std::string SendHalfCloseAndRead(uint16_t port, const std::string& input) {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  SendInference(socket, port, input);
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);
  std::string reply;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(reply), ec);  // until the server closes
  return reply;
}

TEST_F(BackendFailuresTest, ClientThatHalfClosesAfterSendingIsStillAnswered) {
  TestConfig config;
  config.devices = 1;
  config.max_batch_size = 1;
  config.max_batch_delay_us = 0;
  config.fixed_latency_us = 200'000;
  config.watch_client_min_queue_depth = 0;  // watch every request
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  std::string reply = SendHalfCloseAndRead(port(), "half closed");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  size_t body = reply.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << reply;
  EXPECT_TRUE(IsCompletion(200, reply.substr(body + 4), "half closed", kDefaultMaxTokens));
}

TEST_F(BackendFailuresTest, ClientThatHangsUpWhileQueuedIsDroppedBeforeTheAccelerator) {
  TestConfig config;
  config.devices = 1;
  config.max_batch_size = 1;
  config.max_batch_delay_us = 0;
  config.fixed_latency_us = 600'000;        // the first request holds the device this long
  config.watch_client_min_queue_depth = 0;  // watch every request
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  LoadClient first({.port = port(), .connections = 1}, {InferenceRequest(kPaidKey, "first")});
  first.Start();
  auto client = NewClient();
  const std::map<std::string, std::string> model = {{"model", std::string(kModel)}};
  ASSERT_TRUE(PollUntil(
      [&] { return SumSamples(Samples(*client), "sluice_accelerator_busy_slots", model) == 1; },
      milliseconds(2'000)));
  SendAndHangUp(port(), "abandoned");
  ASSERT_TRUE(PollUntil([&] { return QueueDepth(*client) == 1; }, milliseconds(2'000)));
  std::vector<LoadResult> last =
      LoadClient::Run({.port = port(), .connections = 1}, {InferenceRequest(kPaidKey, "last")});
  std::vector<LoadResult> head = first.Wait();
  EXPECT_TRUE(IsCompletion(head[0].status, head[0].body, "first", kDefaultMaxTokens));
  EXPECT_TRUE(IsCompletion(last[0].status, last[0].body, "last", kDefaultMaxTokens));
  // Two batches ran; the abandoned request never reached the device.
  std::vector<MetricSample> samples = Samples(*client);
  EXPECT_EQ(SumSamples(samples, "sluice_batches_total", model), 2);
  EXPECT_EQ(SumSamples(samples, "sluice_requests_total", {{"status", "499"}}), 1);
}

}  // namespace
}  // namespace sluice::testing
