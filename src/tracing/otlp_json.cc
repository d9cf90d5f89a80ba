#include "tracing/otlp_json.h"

#include <charconv>

#include "common/json_writer.h"

namespace sluice::tracing {
namespace {

// The exporter encodes every span of a busy gateway: the text is written
// directly (no JSON tree), strings escaped by AppendJsonText.

void Decimal(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

// "key":"<decimal>": OTLP's JSON mapping writes 64-bit integers as strings.
void QuotedDecimal(std::string& out, std::string_view key, int64_t v) {
  out.push_back('"');
  out.append(key);
  out.append("\":\"");
  Decimal(out, v);
  out.push_back('"');
}

void Attributes(std::string& out, const std::vector<Attribute>& attributes) {
  out.append("\"attributes\":[");
  for (size_t i = 0; i < attributes.size(); ++i) {
    const Attribute& a = attributes[i];
    if (i > 0) out.push_back(',');
    out.append("{\"key\":");
    AppendJsonText(out, a.key);
    out.append(",\"value\":{");
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      out.append("\"stringValue\":");
      AppendJsonText(out, *s);
    } else if (const auto* n = std::get_if<int64_t>(&a.value)) {
      QuotedDecimal(out, "intValue", *n);
    } else if (const auto* d = std::get_if<double>(&a.value)) {
      std::string number;
      JsonObjectWriter(number).Double("doubleValue", *d).Close();  // {"doubleValue":x}
      out.append(number, 1, number.size() - 2);
    } else {
      out.append(std::get<bool>(a.value) ? "\"boolValue\":true" : "\"boolValue\":false");
    }
    out.append("}}");
  }
  out.push_back(']');
}

void EncodeSpan(std::string& out, const Span& s) {
  out.append("{\"traceId\":\"").append(Hex(s.context.trace_id));
  out.append("\",\"spanId\":\"").append(Hex(s.context.span_id)).push_back('"');
  if (s.parent_span_id != SpanId{}) {
    out.append(",\"parentSpanId\":\"").append(Hex(s.parent_span_id)).push_back('"');
  }
  if (!s.trace_state.empty()) {
    out.append(",\"traceState\":");
    AppendJsonText(out, s.trace_state);
  }
  out.append(",\"name\":");
  AppendJsonText(out, s.name);
  out.append(",\"kind\":");
  Decimal(out, static_cast<int>(s.kind));
  out.push_back(',');
  QuotedDecimal(out, "startTimeUnixNano", s.start_unix_nanos);
  out.push_back(',');
  QuotedDecimal(out, "endTimeUnixNano", s.end_unix_nanos);
  if (!s.attributes.empty()) {
    out.push_back(',');
    Attributes(out, s.attributes);
  }
  if (!s.events.empty()) {
    out.append(",\"events\":[");
    for (size_t i = 0; i < s.events.size(); ++i) {
      const SpanEvent& e = s.events[i];
      if (i > 0) out.push_back(',');
      out.push_back('{');
      QuotedDecimal(out, "timeUnixNano", e.unix_nanos);
      out.append(",\"name\":");
      AppendJsonText(out, e.name);
      if (!e.attributes.empty()) {
        out.push_back(',');
        Attributes(out, e.attributes);
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  if (!s.links.empty()) {
    out.append(",\"links\":[");
    for (size_t i = 0; i < s.links.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append("{\"traceId\":\"").append(Hex(s.links[i].trace_id));
      out.append("\",\"spanId\":\"").append(Hex(s.links[i].span_id)).append("\"}");
    }
    out.push_back(']');
  }
  if (s.error) {
    out.append(",\"status\":{\"code\":2,\"message\":");
    AppendJsonText(out, s.status_message);
    out.push_back('}');
  }
  out.push_back('}');
}

}  // namespace

std::string EncodeOtlpJson(const Resource& resource, const std::vector<Span>& spans) {
  std::vector<Attribute> resource_attributes{{"service.name", resource.service_name}};
  if (!resource.instance_id.empty()) {
    resource_attributes.push_back({"service.instance.id", resource.instance_id});
  }
  if (!resource.role.empty()) resource_attributes.push_back({"sluice.role", resource.role});
  std::string out;
  out.reserve(256 + spans.size() * 512);
  out.append("{\"resourceSpans\":[{\"resource\":{");
  Attributes(out, resource_attributes);
  out.append("},\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\"},\"spans\":[");
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out.push_back(',');
    EncodeSpan(out, spans[i]);
  }
  out.append("]}]}]}");
  return out;
}

}  // namespace sluice::tracing
