// DispatchGroup: the spans of its batches. A batch serves requests of many
// traces, so its span is the root of a trace of its own, linked to the span
// of each member request (OpenTelemetry's batch pattern); the backend call
// is its child, and HTTP backends receive the batch span's traceparent.
#include "core/dispatch_group.h"

namespace sluice {

void DispatchGroup::StartBatchSpan(Slot& slot) {
  if (options_.tracer == nullptr) return;
  bool sampled = false;
  for (const RequestPtr& r : slot.batch) sampled = sampled || r->trace.sampled;
  slot.trace = tracing::Tracer::Root(sampled);
  slot.trace_start_unix_nanos = tracing::NowUnixNanos();
  const std::string traceparent = tracing::FormatTraceparent(slot.trace);
  for (const RequestPtr& r : slot.batch) r->batch_traceparent = traceparent;
}

void DispatchGroup::EndBatchSpan(const Slot& slot, const std::vector<RequestPtr>& batch,
                                 const Status& error) {
  if (options_.tracer == nullptr || !slot.trace.sampled) return;
  const int64_t end = tracing::NowUnixNanos();
  int attempt = 0;
  tracing::Span span;
  span.context = slot.trace;
  span.name = "sluice.batch";
  span.start_unix_nanos = slot.trace_start_unix_nanos;
  span.end_unix_nanos = end;
  span.links.reserve(batch.size());
  for (const RequestPtr& r : batch) {
    if (r->trace.valid()) span.links.push_back(r->trace);
    attempt = std::max(attempt, r->attempts);
  }
  span.attributes = {{"sluice.model", options_.model},
                     {"sluice.batch_id", static_cast<int64_t>(slot.batch_id)},
                     {"sluice.batch_size", static_cast<int64_t>(batch.size())},
                     {"sluice.attempt", static_cast<int64_t>(attempt)}};
  span.error = !error.ok();
  if (span.error) span.status_message = error.message();

  tracing::Span call;
  call.context = tracing::Tracer::Child(slot.trace);
  call.parent_span_id = slot.trace.span_id;
  call.name = "sluice.backend_call";
  call.kind = tracing::SpanKind::kClient;
  call.start_unix_nanos = slot.trace_start_unix_nanos;
  call.end_unix_nanos = end;
  call.attributes = {{"sluice.backend", slot.backend->name()},
                     {"sluice.batch_size", static_cast<int64_t>(batch.size())}};
  call.error = span.error;
  call.status_message = span.status_message;
  options_.tracer->End(std::move(call));
  options_.tracer->End(std::move(span));
}

}  // namespace sluice
