#include "tracing/tracer.h"

#include <cmath>

namespace sluice::tracing {

SpanContext Tracer::Start(const std::optional<SpanContext>& parent) const {
  if (parent && parent->valid()) return Child(*parent);
  SpanContext c;
  c.trace_id = NewTraceId();
  c.span_id = NewSpanId();
  c.sampled = SampledByRatio(c.trace_id);
  return c;
}

SpanContext Tracer::Child(const SpanContext& parent) {
  SpanContext c = parent;
  c.span_id = NewSpanId();
  return c;
}

SpanContext Tracer::Root(bool sampled) {
  SpanContext c;
  c.trace_id = NewTraceId();
  c.span_id = NewSpanId();
  c.sampled = sampled;
  return c;
}

bool Tracer::SampledByRatio(const TraceId& id) const {
  if (options_.sample_ratio >= 1) return true;
  if (options_.sample_ratio <= 0) return false;
  uint64_t low = 0;
  for (size_t i = 8; i < 16; ++i) low = low << 8 | id[i];
  // 2^64 * ratio, below 2^64 since ratio < 1.
  const auto bound = static_cast<uint64_t>(std::ldexp(options_.sample_ratio, 64));
  return low < bound;
}

void Tracer::End(Span&& span) const {
  if (span.context.sampled) options_.exporter->Export(std::move(span));
}

}  // namespace sluice::tracing
