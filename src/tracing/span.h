// A finished span, as the exporter sends it (OpenTelemetry's data model,
// the parts Sluice uses).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "tracing/trace_context.h"

namespace sluice::tracing {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

struct Attribute {
  using Value = std::variant<std::string, int64_t, double, bool>;
  std::string key;
  Value value;
};

struct SpanEvent {
  std::string name;
  int64_t unix_nanos = 0;
  std::vector<Attribute> attributes;
};

struct Span {
  SpanContext context;      // its trace and span id
  SpanId parent_span_id{};  // all zero: a root
  std::string trace_state;  // the tracestate it was started with
  std::string name;         // low-cardinality: "POST /v1/inference", "sluice.batch"
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::vector<SpanContext> links;  // e.g. a batch's member requests
  bool error = false;              // status ERROR (else UNSET)
  std::string status_message;      // with `error`
};

}  // namespace sluice::tracing
