// Tracer: the sampling decision of each trace and the hand-off of finished
// spans to the exporter.
//
// Sampling is parent-based: a span whose client sent a traceparent follows
// that trace's sampled flag; a new trace is sampled with `sample_ratio`,
// decided from its trace id (the low 8 bytes against ratio * 2^64, as
// OpenTelemetry's TraceIdRatioBased does), so every process that sees the
// trace decides the same. Spans of unsampled traces are never built: callers
// check SpanContext::sampled first. Thread-safe.
#pragma once

#include <optional>

#include "tracing/span.h"
#include "tracing/span_exporter.h"

namespace sluice::tracing {

class Tracer {
 public:
  struct Options {
    double sample_ratio = 1.0;         // 0..1, new traces only
    SpanExporter* exporter = nullptr;  // required; not owned
  };
  explicit Tracer(Options options) : options_(options) {}

  // A new span: in `parent`'s trace and sampled as it is, or the root of a
  // new trace.
  SpanContext Start(const std::optional<SpanContext>& parent) const;
  // A new span in `parent`'s trace (a child of it), sampled as it is.
  static SpanContext Child(const SpanContext& parent);
  // The root of a new trace, sampled when `sampled` (a batch: when one of
  // its members is).
  static SpanContext Root(bool sampled);
  bool SampledByRatio(const TraceId& trace_id) const;

  // Hands `span` to the exporter when its trace is sampled.
  void End(Span&& span) const;

 private:
  const Options options_;
};

}  // namespace sluice::tracing
