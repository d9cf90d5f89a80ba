#include "tracing/otlp_json.h"

#include <boost/json.hpp>

namespace sluice::tracing {
namespace {

namespace json = boost::json;

json::array Attributes(const std::vector<Attribute>& attributes) {
  json::array out;
  out.reserve(attributes.size());
  for (const Attribute& a : attributes) {
    json::object value;
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      value["stringValue"] = *s;
    } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
      value["intValue"] = std::to_string(*i);
    } else if (const auto* d = std::get_if<double>(&a.value)) {
      value["doubleValue"] = *d;
    } else {
      value["boolValue"] = std::get<bool>(a.value);
    }
    out.push_back(json::object{{"key", a.key}, {"value", std::move(value)}});
  }
  return out;
}

json::object EncodeSpan(const Span& s) {
  json::object o;
  o["traceId"] = Hex(s.context.trace_id);
  o["spanId"] = Hex(s.context.span_id);
  if (s.parent_span_id != SpanId{}) o["parentSpanId"] = Hex(s.parent_span_id);
  if (!s.trace_state.empty()) o["traceState"] = s.trace_state;
  o["name"] = s.name;
  o["kind"] = static_cast<int>(s.kind);
  o["startTimeUnixNano"] = std::to_string(s.start_unix_nanos);
  o["endTimeUnixNano"] = std::to_string(s.end_unix_nanos);
  if (!s.attributes.empty()) o["attributes"] = Attributes(s.attributes);
  if (!s.events.empty()) {
    json::array events;
    for (const SpanEvent& e : s.events) {
      json::object event{{"timeUnixNano", std::to_string(e.unix_nanos)}, {"name", e.name}};
      if (!e.attributes.empty()) event["attributes"] = Attributes(e.attributes);
      events.push_back(std::move(event));
    }
    o["events"] = std::move(events);
  }
  if (!s.links.empty()) {
    json::array links;
    for (const SpanContext& l : s.links) {
      links.push_back(json::object{{"traceId", Hex(l.trace_id)}, {"spanId", Hex(l.span_id)}});
    }
    o["links"] = std::move(links);
  }
  if (s.error) o["status"] = json::object{{"code", 2}, {"message", s.status_message}};
  return o;
}

}  // namespace

std::string EncodeOtlpJson(const Resource& resource, const std::vector<Span>& spans) {
  std::vector<Attribute> resource_attributes{{"service.name", resource.service_name}};
  if (!resource.instance_id.empty()) {
    resource_attributes.push_back({"service.instance.id", resource.instance_id});
  }
  if (!resource.role.empty()) resource_attributes.push_back({"sluice.role", resource.role});
  json::array encoded;
  encoded.reserve(spans.size());
  for (const Span& s : spans) encoded.push_back(EncodeSpan(s));
  json::object scope_spans{{"scope", json::object{{"name", "sluice"}}},
                           {"spans", std::move(encoded)}};
  json::object resource_spans{
      {"resource", json::object{{"attributes", Attributes(resource_attributes)}}},
      {"scopeSpans", json::array{std::move(scope_spans)}}};
  return json::serialize(json::object{{"resourceSpans", json::array{std::move(resource_spans)}}});
}

}  // namespace sluice::tracing
