#include "http/request_trace.h"

namespace sluice::http {

std::shared_ptr<RequestTrace> RequestTrace::Start(const tracing::Tracer& tracer,
                                                  const HttpRequest& request,
                                                  std::string_view route, TimePoint now) {
  std::optional<tracing::SpanContext> parent;
  std::string trace_state;
  if (auto it = request.find("traceparent"); it != request.end()) {
    parent = tracing::ParseTraceparent(std::string_view(it->value().data(), it->value().size()));
    // tracestate belongs to the traceparent it came with.
    if (auto ts = request.find("tracestate"); parent && ts != request.end()) {
      trace_state =
          tracing::SanitizeTracestate(std::string_view(ts->value().data(), ts->value().size()));
    }
  }
  tracing::SpanContext context = tracer.Start(parent);
  if (!context.sampled) return nullptr;
  const std::string_view method = request.method_string();
  std::string name;
  name.reserve(method.size() + 1 + route.size());
  name.append(method).append(" ").append(route);
  std::shared_ptr<RequestTrace> trace(
      new RequestTrace(tracer, context, parent ? parent->span_id : tracing::SpanId{},
                       std::move(trace_state), std::move(name), now));
  trace->Attribute("http.request.method", std::string(method));
  return trace;
}

RequestTrace::RequestTrace(const tracing::Tracer& tracer, tracing::SpanContext context,
                           tracing::SpanId parent, std::string trace_state, std::string name,
                           TimePoint now)
    : tracer_(tracer),
      context_(context),
      parent_(parent),
      trace_state_(std::move(trace_state)),
      name_(std::move(name)),
      start_(now),
      start_unix_nanos_(tracing::NowUnixNanos()) {}

int64_t RequestTrace::UnixNanos(TimePoint t) const {
  return start_unix_nanos_ +
         std::chrono::duration_cast<std::chrono::nanoseconds>(t - start_).count();
}

void RequestTrace::Event(std::string name, std::vector<tracing::Attribute> attributes) {
  const int64_t now = tracing::NowUnixNanos();
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back({std::move(name), now, std::move(attributes)});
}

void RequestTrace::Attribute(std::string key, tracing::Attribute::Value value) {
  std::lock_guard<std::mutex> lock(mu_);
  attributes_.push_back({std::move(key), std::move(value)});
}

void RequestTrace::Answered(const InferenceRequest& request, const InferenceOutcome& outcome) {
  if (outcome.batch_id == 0 || outcome.cached) return;
  std::lock_guard<std::mutex> lock(mu_);
  queued_.push_back(
      {request.arrival, request.arrival + outcome.queue_wait, outcome.batch_id, request.attempts});
}

Reply RequestTrace::Wrap(Reply reply) {
  return reply.Observed([self = shared_from_this()](const WireResponse& part) {
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->status_ == 0) self->status_ = part.status;
    }
    if (!part.more) self->Release();
  });
}

std::shared_ptr<void> RequestTrace::KeepOpen() {
  holds_.fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<void>(nullptr, [self = shared_from_this()](void*) { self->Release(); });
}

void RequestTrace::Release() {
  if (holds_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  int status = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = status_;
  }
  End(status);
}

void RequestTrace::End(int status) {
  tracing::Span span;
  span.context = context_;
  span.parent_span_id = parent_;
  span.trace_state = trace_state_;
  span.name = name_;
  span.kind = tracing::SpanKind::kServer;
  span.start_unix_nanos = start_unix_nanos_;
  span.end_unix_nanos = tracing::NowUnixNanos();
  std::vector<Queued> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    span.attributes = std::move(attributes_);
    span.events = std::move(events_);
    queued = std::move(queued_);
  }
  span.attributes.push_back({"http.response.status_code", static_cast<int64_t>(status)});
  // OpenTelemetry's HTTP conventions: a server span fails on a 5xx only.
  span.error = status >= 500;
  if (span.error) span.status_message = "HTTP " + std::to_string(status);
  for (const Queued& q : queued) {
    tracing::Span wait;
    wait.context = tracing::Tracer::Child(context_);
    wait.parent_span_id = context_.span_id;
    wait.name = "sluice.queue";
    wait.start_unix_nanos = UnixNanos(q.arrival);
    wait.end_unix_nanos = UnixNanos(q.dispatched);
    wait.attributes = {{"sluice.batch_id", static_cast<int64_t>(q.batch_id)}};
    // Known where the batch ran (one process); a gateway's worker keeps it.
    if (q.attempts > 0) wait.attributes.push_back({"sluice.attempts", int64_t{q.attempts}});
    tracer_.End(std::move(wait));
  }
  tracer_.End(std::move(span));
}

}  // namespace sluice::http
