// Request collapsing over real HTTP (`collapse: true` on the one model):
// identical requests waiting at the same time run as one accelerator item,
// every client gets the answer under its own request id, a client that
// leaves or whose own deadline passes is answered alone, and requests whose
// answers may not be shared are never collapsed.
//
// The one simulated device takes 2 s per batch, so requests sent together
// (LoadClient sends only once every connection is open) all arrive while the
// first one's item is on the device.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/json.hpp>

#include "testing/load_client.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;

class RequestCollapsingTest : public SluiceTest {
 protected:
  static TestConfig CollapseConfig(bool deterministic = true) {
    TestConfig config;
    config.collapse = true;
    config.deterministic = deterministic;
    config.devices = 1;
    config.max_batch_delay_us = 0;
    config.fixed_latency_us = 2'000'000;
    config.per_item_latency_us = 0;
    config.accelerator_timeout_ms = 8'000;
    config.watch_client_min_queue_depth = 0;  // watch every client
    return config;
  }

  // The model's value of a metric (summed over `match`); 0 when absent.
  double Metric(std::string_view name, const std::map<std::string, std::string>& match = {}) {
    return ScrapeSum(name, match);
  }
  double ModelMetric(std::string_view name) {
    return Metric(name, {{"model", std::string(kModel)}});
  }
  // Polls until `n` requests wait in the model's groups.
  bool WaitingBecomes(double n) {
    return PollUntil([&] { return ModelMetric("sluice_collapse_waiting_requests") == n; },
                     milliseconds(5'000));
  }
};

TEST_F(RequestCollapsingTest, AHundredIdenticalConcurrentRequestsRunAsOneAcceleratorItem) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CollapseConfig()));
  std::vector<LoadRequest> requests(100, InferenceRequest(kPaidKey, "the same question"));
  std::vector<LoadResult> results = LoadClient::Run({.port = port(), .connections = 100}, requests);
  ASSERT_EQ(results.size(), 100u);
  std::set<std::string> ids;
  std::string output;
  int collapsed = 0;
  for (const LoadResult& r : results) {
    ASSERT_TRUE(IsCompletion(r.status, r.body, "the same question", kDefaultMaxTokens)) << r.body;
    json::value v = json::parse(r.body);
    ids.insert(std::string(v.at("request_id").as_string()));
    if (output.empty()) output = v.at("output").as_string();
    EXPECT_EQ(v.at("output").as_string(), output);
    const json::object& metadata = v.at("metadata").as_object();
    if (metadata.contains("collapsed") && metadata.at("collapsed").as_bool()) ++collapsed;
    EXPECT_FALSE(r.headers.contains("x-cache"));  // no cache on this model
  }
  EXPECT_EQ(ids.size(), 100u);  // each under its own id
  EXPECT_EQ(collapsed, 99);     // all but the one whose item ran
  EXPECT_EQ(ModelMetric("sluice_batches_total"), 1);
  EXPECT_EQ(ModelMetric("sluice_batch_size_sum"), 1);  // one accelerator item
  EXPECT_EQ(ModelMetric("sluice_collapsed_requests_total"), 99);
  EXPECT_EQ(ModelMetric("sluice_accelerator_items_saved_total"), 99);
  EXPECT_EQ(ModelMetric("sluice_collapse_groups"), 0);
  EXPECT_EQ(ModelMetric("sluice_collapse_waiting_requests"), 0);
  EXPECT_EQ(Metric("sluice_requests_total", {{"status", "200"}}), 100);
}

TEST_F(RequestCollapsingTest, AClientThatLeavesDoesNotCancelTheOthers) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CollapseConfig()));
  // The first request: its item is the one that runs.
  asio::io_context ioc;
  asio::ip::tcp::socket first(ioc);
  SendInference(first, port(), "asked twice");
  ASSERT_TRUE(WaitingBecomes(1));
  LoadClient second({.port = port(), .connections = 1},
                    {InferenceRequest(kPaidKey, "asked twice")});
  second.Start();
  ASSERT_TRUE(WaitingBecomes(2));
  // The first client aborts its connection (RST).
  first.set_option(asio::socket_base::linger(true, 0));
  first.close();
  ASSERT_TRUE(PollUntil(
      [&] {
        return Metric("sluice_requests_total", {{"status", "499"}}) == 1;
      },
      milliseconds(5'000)));
  std::vector<LoadResult> rest = second.Wait();
  ASSERT_EQ(rest.size(), 1u);
  ASSERT_TRUE(IsCompletion(rest[0].status, rest[0].body, "asked twice", kDefaultMaxTokens))
      << rest[0].body;
  EXPECT_TRUE(json::parse(rest[0].body).at("metadata").at("collapsed").as_bool());
  EXPECT_EQ(ModelMetric("sluice_batch_size_sum"), 1);
}

TEST_F(RequestCollapsingTest, EachClientKeepsItsOwnDeadline) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(CollapseConfig()));
  LoadClient patient({.port = port(), .connections = 1},
                     {InferenceRequest(kPaidKey, "one answer")});
  patient.Start();
  ASSERT_TRUE(WaitingBecomes(1));
  // Joins the same item, but will not wait the 2 s it takes.
  std::vector<LoadResult> hurried = LoadClient::Run(
      {.port = port(), .connections = 1},
      {InferenceRequest(kPaidKey, "one answer", std::nullopt, {{"X-Request-Timeout-Ms", "300"}})});
  ASSERT_EQ(hurried.size(), 1u);
  EXPECT_TRUE(IsError(hurried[0].status, hurried[0].body, 504, "deadline_exceeded"))
      << hurried[0].body;
  const std::string message(json::parse(hurried[0].body).at("error").at("message").as_string());
  EXPECT_TRUE(message.starts_with("deadline passed after ")) << message;
  EXPECT_TRUE(message.ends_with(" ms, waiting for the answer of an identical request")) << message;
  std::vector<LoadResult> done = patient.Wait();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(IsCompletion(done[0].status, done[0].body, "one answer", kDefaultMaxTokens))
      << done[0].body;
  EXPECT_EQ(ModelMetric("sluice_batch_size_sum"), 1);
  EXPECT_EQ(Metric("sluice_requests_total", {{"status", "504"}}), 1);
}

TEST_F(RequestCollapsingTest, OnlyRequestsWhoseAnswerMayBeSharedAreCollapsed) {
  // Not deterministic: only requests at temperature 0 may share an answer.
  ASSERT_NO_FATAL_FAILURE(StartSluice(CollapseConfig(/*deterministic=*/false)));
  auto at = [](const char* input, const char* temperature) {
    LoadRequest r = InferenceRequest(kPaidKey, input);
    r.body = std::string(R"({"model":")") + std::string(kModel) + R"(","input":")" + input +
             R"(","parameters":{"temperature":)" + temperature + "}}";
    return r;
  };
  std::vector<LoadRequest> requests = {
      at("sampled", "0.7"),
      at("sampled", "0.7"),  // two items
      at("greedy", "0"),
      at("greedy", "0"),  // one item
      InferenceRequest(kPaidKey, "a"),
      InferenceRequest(kPaidKey, "b"),  // different: two
  };
  std::vector<LoadResult> results = LoadClient::Run({.port = port(), .connections = 6}, requests);
  for (const LoadResult& r : results) EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ModelMetric("sluice_batch_size_sum"), 5);
  EXPECT_EQ(ModelMetric("sluice_collapsed_requests_total"), 1);
}

}  // namespace
}  // namespace sluice::testing
