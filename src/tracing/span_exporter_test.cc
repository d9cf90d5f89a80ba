#include "tracing/span_exporter.h"

#include <gtest/gtest.h>

#include "testing/otlp_receiver.h"
#include "tracing/tracer.h"

namespace sluice::tracing {
namespace {

Span MakeSpan(int i) {
  Span s;
  s.context = Tracer::Root(true);
  s.name = "span " + std::to_string(i);
  s.start_unix_nanos = 1;
  s.end_unix_nanos = 2;
  return s;
}

SpanExporter::Options Options(std::string endpoint, size_t max_queue = 8'192,
                              size_t max_batch = 512, int64_t interval_ms = 1'000) {
  SpanExporter::Options o;
  o.endpoint = std::move(endpoint);
  o.max_queue_spans = max_queue;
  o.max_batch_spans = max_batch;
  o.interval_ms = interval_ms;
  return o;
}

TEST(SpanExporterTest, RefusesBadOptionsNamingTheField) {
  EXPECT_EQ(SpanExporter::Create(Options("https://x:4318"))
                .status()
                .message()
                .rfind("otlp_endpoint: ", 0),
            0u);
  EXPECT_EQ(SpanExporter::Create(Options("http://x:4318", 8'192, 0)).status().message(),
            "export_batch_spans: must be > 0");
  EXPECT_EQ(SpanExporter::Create(Options("http://x:4318", 10, 20)).status().message(),
            "max_queue_spans: must be at least export_batch_spans");
}

TEST(SpanExporterTest, SendsFullBatchesWithoutWaitingForTheInterval) {
  testing::OtlpReceiver receiver;
  auto exporter = SpanExporter::Create(  // an endpoint without a path, but a '/'
      Options("http://127.0.0.1:" + std::to_string(receiver.port()) + "/", 8'192, 10, 60'000));
  ASSERT_TRUE(exporter.ok());
  for (int i = 0; i < 25; ++i) (*exporter)->Export(MakeSpan(i));
  // Two full batches go at once; the last 5 wait for the interval.
  EXPECT_TRUE(receiver.WaitFor(
      [&](const auto& s) { return s.size() == 20 && (*exporter)->stats().exported == 20; },
      std::chrono::seconds(10)));
  EXPECT_EQ(receiver.posts(), 2u);
  EXPECT_EQ((*exporter)->stats().exported, 20u);
  exporter->reset();  // the destructor sends the rest
  EXPECT_EQ(receiver.spans().size(), 25u);
  EXPECT_EQ(receiver.spans()[24].name, "span 24");
}

TEST(SpanExporterTest, ARefusedBatchIsCountedAndDropped) {
  testing::OtlpReceiver receiver;
  receiver.RespondWith(503);
  auto exporter = SpanExporter::Create(Options(receiver.endpoint(), 4, 4, 60'000));
  ASSERT_TRUE(exporter.ok());
  for (int i = 0; i < 4; ++i) (*exporter)->Export(MakeSpan(i));  // a full batch: sent, refused
  ASSERT_TRUE(receiver.WaitFor([&](const auto&) { return (*exporter)->stats().failed == 4; },
                               std::chrono::seconds(10)));
  EXPECT_EQ((*exporter)->stats().exported, 0u);
  EXPECT_EQ(receiver.posts(), 1u) << "no retry: tracing stays bounded";
}

TEST(SpanExporterTest, AFullQueueDropsWhileTheReceiverIsSlow) {
  testing::OtlpReceiver receiver;
  receiver.Hold(true);
  auto exporter = SpanExporter::Create(Options(receiver.endpoint(), 4, 4, 60'000));
  ASSERT_TRUE(exporter.ok());
  for (int i = 0; i < 4; ++i) (*exporter)->Export(MakeSpan(i));  // taken, and its POST held
  ASSERT_TRUE(receiver.WaitFor([&](const auto&) { return receiver.arrived() == 1; },
                               std::chrono::seconds(10)));
  for (int i = 4; i < 10; ++i) (*exporter)->Export(MakeSpan(i));  // 4 queued, 2 dropped
  EXPECT_EQ((*exporter)->stats().dropped, 2u);
  receiver.Hold(false);
  EXPECT_TRUE(receiver.WaitFor(
      [&](const auto& s) { return s.size() == 8 && (*exporter)->stats().exported == 8; },
      std::chrono::seconds(10)));
  EXPECT_EQ((*exporter)->stats().exported, 8u);
}

}  // namespace
}  // namespace sluice::tracing
