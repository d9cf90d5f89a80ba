#include "tracing/tracer.h"

#include <gtest/gtest.h>

#include "testing/otlp_receiver.h"

namespace sluice::tracing {
namespace {

std::unique_ptr<SpanExporter> Exporter(std::string endpoint, Resource resource = {}) {
  SpanExporter::Options o;
  o.endpoint = std::move(endpoint);
  o.resource = std::move(resource);
  auto exporter = SpanExporter::Create(o);
  EXPECT_TRUE(exporter.ok()) << exporter.status().ToString();
  return exporter.ok() ? std::move(exporter).value() : nullptr;
}

Tracer::Options Sampling(double ratio, SpanExporter* exporter) {
  Tracer::Options o;
  o.sample_ratio = ratio;
  o.exporter = exporter;
  return o;
}

TEST(TracerTest, FollowsTheParentsSampledFlag) {
  auto exporter = Exporter("http://127.0.0.1:9/v1/traces");
  ASSERT_NE(exporter, nullptr);
  Tracer never(Sampling(0, exporter.get()));
  SpanContext parent{NewTraceId(), NewSpanId(), true};
  SpanContext child = never.Start(parent);
  EXPECT_EQ(child.trace_id, parent.trace_id);
  EXPECT_NE(child.span_id, parent.span_id);
  EXPECT_TRUE(child.sampled) << "parent-based: the ratio applies to new traces only";
  parent.sampled = false;
  Tracer always(Sampling(1, exporter.get()));
  EXPECT_FALSE(always.Start(parent).sampled);
  EXPECT_TRUE(always.Start(std::nullopt).sampled);
  EXPECT_FALSE(never.Start(std::nullopt).sampled);
}

TEST(TracerTest, TheRatioSamplesThatShareOfNewTraces) {
  auto exporter = Exporter("http://127.0.0.1:9/v1/traces");
  ASSERT_NE(exporter, nullptr);
  Tracer tracer(Sampling(0.25, exporter.get()));
  int sampled = 0;
  for (int i = 0; i < 20'000; ++i) sampled += tracer.Start(std::nullopt).sampled ? 1 : 0;
  EXPECT_GT(sampled, 4'500);
  EXPECT_LT(sampled, 5'500);
  // Decided by the trace id alone: every process decides the same.
  TraceId id{};
  id[8] = 0x30;  // low 8 bytes 0x30.. < 0.25 * 2^64 = 0x40..
  EXPECT_TRUE(tracer.SampledByRatio(id));
  id[8] = 0x50;
  EXPECT_FALSE(tracer.SampledByRatio(id));
}

TEST(TracerTest, OnlySampledSpansReachTheReceiver) {
  testing::OtlpReceiver receiver;
  {
    Resource resource;
    resource.instance_id = "gw-1";
    resource.role = "gateway";
    auto exporter = Exporter(receiver.endpoint(), resource);
    ASSERT_NE(exporter, nullptr);
    Tracer tracer(Sampling(1, exporter.get()));
    Span kept;
    kept.context = Tracer::Root(true);
    kept.name = "kept";
    kept.kind = SpanKind::kServer;
    kept.start_unix_nanos = 1;
    kept.end_unix_nanos = 2;
    kept.attributes = {{"sluice.model", std::string("m")}, {"n", int64_t{3}}, {"ok", true}};
    kept.events.push_back({"admitted", 1, {}});
    kept.links.push_back(Tracer::Root(true));
    kept.error = true;
    kept.status_message = "backend failed";
    Span dropped = kept;
    dropped.context.sampled = false;
    dropped.name = "dropped";
    tracer.End(std::move(dropped));
    tracer.End(std::move(kept));
  }  // the destructor sends what is queued
  const auto spans = receiver.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "kept");
  EXPECT_EQ(spans[0].kind, 2);
  EXPECT_EQ(spans[0].attributes.at("sluice.model"), "m");
  EXPECT_EQ(spans[0].attributes.at("n"), "3");
  EXPECT_EQ(spans[0].attributes.at("ok"), "true");
  EXPECT_EQ(spans[0].events, std::vector<std::string>{"admitted"});
  EXPECT_EQ(spans[0].links.size(), 1u);
  EXPECT_EQ(spans[0].status_code, 2);
  EXPECT_EQ(spans[0].parent_span_id, "");
  EXPECT_EQ(spans[0].resource.at("service.name"), "sluice");
  EXPECT_EQ(spans[0].resource.at("service.instance.id"), "gw-1");
  EXPECT_EQ(spans[0].resource.at("sluice.role"), "gateway");
  EXPECT_EQ(receiver.bad_posts(), 0u);
}

}  // namespace
}  // namespace sluice::tracing
