// Tracing end to end: the real binary exports OTLP/HTTP JSON to a receiver
// started by the test (testing/otlp_receiver.h), which decodes every span.
// The span trees of one request (with the client's traceparent), of a batch
// of many requests, and of a batch retried after backend failures; the
// traceparent a backend receives; the sampling ratio.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "modelserver/model_server_process.h"
#include "testing/otlp_receiver.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using modelserver::testing::ModelServerProcess;
using std::chrono::milliseconds;
using Spans = std::vector<ReceivedSpan>;

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kClientSpan = "00f067aa0ba902b7";

std::vector<const ReceivedSpan*> Named(const Spans& spans, std::string_view name) {
  std::vector<const ReceivedSpan*> out;
  for (const ReceivedSpan& s : spans) {
    if (s.name == name) out.push_back(&s);
  }
  return out;
}

// The server span of the request answered with `request_id`, or null.
const ReceivedSpan* ServerSpan(const Spans& spans, const std::string& request_id) {
  for (const ReceivedSpan& s : spans) {
    auto it = s.attributes.find("sluice.request_id");
    if (s.kind == 2 && it != s.attributes.end() && it->second == request_id) return &s;
  }
  return nullptr;
}

// The batch spans that link to `span`.
std::vector<const ReceivedSpan*> BatchesLinking(const Spans& spans, const ReceivedSpan& span) {
  std::vector<const ReceivedSpan*> out;
  for (const ReceivedSpan* b : Named(spans, "sluice.batch")) {
    for (const auto& [trace, id] : b->links) {
      if (trace == span.trace_id && id == span.span_id) out.push_back(b);
    }
  }
  return out;
}

// The child of `parent` named `name`, or null.
const ReceivedSpan* ChildOf(const Spans& spans, const ReceivedSpan& parent, std::string_view name) {
  for (const ReceivedSpan& s : spans) {
    if (s.name == name && s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id) {
      return &s;
    }
  }
  return nullptr;
}

class TracingTest : public SluiceTest {
 protected:
  OtlpReceiver receiver_;
};

TEST_F(TracingTest, ARequestsSpansContinueTheClientsTraceAndLinkItsBatch) {
  TestConfig config;
  config.tracing_endpoint = receiver_.endpoint();
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  const std::string traceparent =
      "00-" + std::string(kTraceId) + "-" + std::string(kClientSpan) + "-01";
  Result<Response> r = NewClient()->Post(
      "/v1/inference", InferenceBody(kModel, "traced"),
      {Bearer(kPaidKey), {"traceparent", traceparent}, {"tracestate", "vendor=opaque"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string id = r->Header("X-Request-Id");

  // The request's span, its queue wait, the batch and its backend call.
  Spans spans;
  ASSERT_TRUE(receiver_.WaitFor(
      [&](const Spans& s) {
        spans = s;
        const ReceivedSpan* server = ServerSpan(s, id);
        return server != nullptr && ChildOf(s, *server, "sluice.queue") != nullptr &&
               !BatchesLinking(s, *server).empty() && !Named(s, "sluice.backend_call").empty();
      },
      milliseconds(10'000)))
      << spans.size() << " spans";
  const ReceivedSpan& server = *ServerSpan(spans, id);
  EXPECT_EQ(server.name, "POST /v1/inference");
  EXPECT_EQ(server.trace_id, kTraceId) << "the client's trace goes on";
  EXPECT_EQ(server.parent_span_id, kClientSpan);
  EXPECT_NE(server.span_id, kClientSpan);
  EXPECT_EQ(server.trace_state, "vendor=opaque");
  EXPECT_EQ(server.attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(server.attributes.at("http.request.method"), "POST");
  EXPECT_EQ(server.attributes.at("sluice.model"), kModel);
  EXPECT_EQ(server.events, (std::vector<std::string>{"authenticated", "rate_limit", "admission"}));
  EXPECT_EQ(server.status_code, 0);
  EXPECT_EQ(server.resource.at("service.name"), "sluice");
  EXPECT_EQ(server.resource.at("sluice.role"), "serve");

  const ReceivedSpan& queued = *ChildOf(spans, server, "sluice.queue");
  EXPECT_GE(queued.start_unix_nanos, server.start_unix_nanos);
  EXPECT_LE(queued.end_unix_nanos, server.end_unix_nanos);
  EXPECT_EQ(queued.attributes.at("sluice.attempts"), "1");

  const auto batches = BatchesLinking(spans, server);
  ASSERT_EQ(batches.size(), 1u);
  const ReceivedSpan& batch = *batches[0];
  EXPECT_NE(batch.trace_id, kTraceId) << "a batch is the root of its own trace";
  EXPECT_EQ(batch.parent_span_id, "");
  EXPECT_EQ(batch.attributes.at("sluice.batch_id"), queued.attributes.at("sluice.batch_id"));
  EXPECT_EQ(batch.attributes.at("sluice.batch_size"), "1");
  EXPECT_EQ(batch.attributes.at("sluice.model"), kModel);
  const ReceivedSpan* call = ChildOf(spans, batch, "sluice.backend_call");
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->kind, 3);
  EXPECT_EQ(call->attributes.at("sluice.backend").rfind("sim:", 0), 0u);
  EXPECT_EQ(receiver_.bad_posts(), 0u);
}

TEST_F(TracingTest, ABatchOfManyRequestsIsOneSpanLinkedToEachOfThem) {
  TestConfig config;
  config.tracing_endpoint = receiver_.endpoint();
  config.devices = 1;
  config.fixed_latency_us = 60'000;  // the one device is busy while the others queue
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  constexpr size_t kRequests = 24;
  std::vector<LoadRequest> requests;
  for (size_t i = 0; i < kRequests; ++i) {
    requests.push_back(InferenceRequest(kPaidKey, "many " + std::to_string(i)));
  }
  std::vector<LoadResult> results =
      LoadClient::Run({port(), kRequests, milliseconds(30'000)}, std::move(requests));
  std::vector<std::string> ids;
  for (const LoadResult& r : results) {
    ASSERT_EQ(r.status, 200) << r.body << r.error;
    ids.push_back(r.headers.at("x-request-id"));
  }
  Spans spans;
  ASSERT_TRUE(receiver_.WaitFor(
      [&](const Spans& s) {
        spans = s;
        return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
          const ReceivedSpan* server = ServerSpan(s, id);
          return server != nullptr && !BatchesLinking(s, *server).empty();
        });
      },
      milliseconds(10'000)));
  // Each request is linked from exactly one batch span; each batch span
  // links as many requests as its size; some batch held several.
  size_t largest = 0;
  for (const std::string& id : ids) {
    const ReceivedSpan& server = *ServerSpan(spans, id);
    EXPECT_NE(server.parent_span_id.size(), 16u) << "no client trace: a root";
    const auto batches = BatchesLinking(spans, server);
    ASSERT_EQ(batches.size(), 1u) << id;
    EXPECT_EQ(batches[0]->attributes.at("sluice.batch_size"),
              std::to_string(batches[0]->links.size()));
    largest = std::max(largest, batches[0]->links.size());
  }
  EXPECT_GT(largest, 1u);
  std::set<std::string> traces;
  for (const std::string& id : ids) traces.insert(ServerSpan(spans, id)->trace_id);
  EXPECT_EQ(traces.size(), kRequests) << "a trace per request without a traceparent";
}

TEST_F(TracingTest, ARetriedBatchHasASpanPerAttemptAndTheBackendGetsItsTraceparent) {
  ModelServerProcess server(
      SLUICE_BINARY, {"--model", std::string(kModel), "--model-version", std::string(kModelVersion),
                      "--devices", "1", "--fixed-latency-us", "2000", "--error-rate", "1"});
  ASSERT_TRUE(server.Start().ok());
  TestConfig config;
  config.tracing_endpoint = receiver_.endpoint();
  config.backend_yaml =
      "    backend:\n      kind: http\n      endpoints:\n        - " + server.url() +
      "/v1/batch\n      connections_per_endpoint: 1\n"
      "    retry:\n      max_retries: 2\n      initial_backoff_ms: 10\n      max_backoff_ms: 20\n"
      "    circuit_breaker:\n      consecutive_failures: 10\n      cooldown_ms: 100\n";
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  Result<Response> r =
      NewClient()->Post("/v1/inference", InferenceBody(kModel, "retried"), {Bearer(kPaidKey)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 502) << r->body;  // every attempt failed
  const std::string id = r->Header("X-Request-Id");

  Spans spans;
  ASSERT_TRUE(receiver_.WaitFor(
      [&](const Spans& s) {
        spans = s;
        const ReceivedSpan* request = ServerSpan(s, id);
        return request != nullptr && BatchesLinking(s, *request).size() == 3;
      },
      milliseconds(10'000)))
      << spans.size() << " spans";
  const ReceivedSpan& request = *ServerSpan(spans, id);
  EXPECT_EQ(request.attributes.at("http.response.status_code"), "502");
  EXPECT_EQ(request.status_code, 2) << "a 5xx fails the server span";
  // One batch span per attempt, in order, each failed with a failed
  // backend call under it.
  auto batches = BatchesLinking(spans, request);
  std::sort(batches.begin(), batches.end(), [](const ReceivedSpan* a, const ReceivedSpan* b) {
    return a->start_unix_nanos < b->start_unix_nanos;
  });
  std::set<std::string> traceparents_sent;
  for (size_t i = 0; i < batches.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(batches[i]->attributes.at("sluice.attempt"), std::to_string(i + 1));
    EXPECT_EQ(batches[i]->status_code, 2);
    const ReceivedSpan* call = ChildOf(spans, *batches[i], "sluice.backend_call");
    ASSERT_NE(call, nullptr);
    EXPECT_EQ(call->status_code, 2);
    EXPECT_EQ(call->attributes.at("sluice.backend"), "http:" + server.url() + "/v1/batch#0");
    traceparents_sent.insert("00-" + batches[i]->trace_id + "-" + batches[i]->span_id + "-01");
  }
  // The model server received each batch span's traceparent.
  HttpClient admin(server.port());
  Result<Response> seen = admin.Get("/admin/traceparents");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  std::set<std::string> received;
  const boost::json::value body = seen->Json();
  for (const auto& t : body.at("traceparents").as_array()) {
    received.insert(std::string(t.as_string()));
  }
  EXPECT_EQ(received, traceparents_sent);
}

TEST_F(TracingTest, NewTracesAreSampledAtTheRatioAndAClientsFlagWins) {
  TestConfig config;
  config.tracing_endpoint = receiver_.endpoint();
  config.tracing_sample_ratio = 0;
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  const std::string sampled =
      "00-" + std::string(kTraceId) + "-" + std::string(kClientSpan) + "-01";
  const std::string unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
  std::string sampled_id;
  for (const std::string& parent : {std::string(), unsampled, sampled}) {
    Headers headers{Bearer(kPaidKey)};
    if (!parent.empty()) headers.emplace_back("traceparent", parent);
    Result<Response> r = client->Post("/v1/inference", InferenceBody(kModel, "ratio"), headers);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200);
    if (parent == sampled) sampled_id = r->Header("X-Request-Id");
  }
  // Only the client's sampled trace is recorded (and its batch's).
  ASSERT_TRUE(receiver_.WaitFor(
      [&](const Spans& s) {
        const ReceivedSpan* server = ServerSpan(s, sampled_id);
        return server != nullptr && !BatchesLinking(s, *server).empty();
      },
      milliseconds(10'000)));
  // The exporter sends in order and the requests were answered in order:
  // a span of the first two would have arrived by now.
  Result<Response> metrics = client->Get("/metrics", {Bearer(kServiceToken)});
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("sluice_trace_spans_dropped_total{reason=\"queue_full\"} 0"),
            std::string::npos);
  for (const ReceivedSpan& s : receiver_.spans()) {
    if (s.kind == 2) {
      EXPECT_EQ(s.trace_id, kTraceId) << s.name;
    }
  }
  EXPECT_EQ(Named(receiver_.spans(), "POST /v1/inference").size(), 1u);
}

}  // namespace
}  // namespace sluice::testing
