#include "tracing/otlp_json.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace sluice::tracing {
namespace {

TEST(OtlpJsonTest, WritesOtlpsJsonMapping) {
  Span s;
  s.context = *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  s.parent_span_id = {1, 2, 3, 4, 5, 6, 7, 8};
  s.trace_state = "v=\"q\"";
  s.name = "POST /v1/inference";
  s.kind = SpanKind::kServer;
  s.start_unix_nanos = 1'700'000'000'000'000'001;
  s.end_unix_nanos = 1'700'000'000'000'000'002;
  s.attributes = {{"s", std::string("x\ny")}, {"i", int64_t{-3}}, {"d", 0.5}, {"b", false}};
  s.events = {{"admission", 7, {{"sluice.admission", std::string("admitted")}}}};
  s.links = {s.context};
  s.error = true;
  s.status_message = "HTTP 502";
  Resource r;
  r.instance_id = "gw";
  const std::string text = EncodeOtlpJson(r, {s});
  const boost::json::value v = boost::json::parse(text);  // valid JSON
  const auto& rs = v.at("resourceSpans").at(0);
  EXPECT_EQ(boost::json::serialize(rs.at("resource")),
            R"({"attributes":[{"key":"service.name","value":{"stringValue":"sluice"}},)"
            R"({"key":"service.instance.id","value":{"stringValue":"gw"}}]})");
  const auto& span = rs.at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(
      boost::json::serialize(span),
      R"({"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",)"
      R"("parentSpanId":"0102030405060708","traceState":"v=\"q\"",)"
      R"("name":"POST /v1/inference","kind":2,)"
      R"("startTimeUnixNano":"1700000000000000001","endTimeUnixNano":"1700000000000000002",)"
      R"("attributes":[{"key":"s","value":{"stringValue":"x\ny"}},)"
      R"({"key":"i","value":{"intValue":"-3"}},{"key":"d","value":{"doubleValue":5E-1}},)"
      R"({"key":"b","value":{"boolValue":false}}],)"
      R"("events":[{"timeUnixNano":"7","name":"admission","attributes":)"
      R"([{"key":"sluice.admission","value":{"stringValue":"admitted"}}]}],)"
      R"("links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}],)"
      R"("status":{"code":2,"message":"HTTP 502"}})");
}

TEST(OtlpJsonTest, ARootWithoutExtrasHasOnlyItsRequiredFields) {
  Span s;
  s.context = {NewTraceId(), NewSpanId(), true};
  s.name = "sluice.batch";
  const boost::json::value v = boost::json::parse(EncodeOtlpJson({}, {s, s}));
  const auto& spans = v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans");
  ASSERT_EQ(spans.as_array().size(), 2u);
  EXPECT_EQ(spans.at(0).as_object().size(), 6u);  // ids, name, kind, two times
}

}  // namespace
}  // namespace sluice::tracing
