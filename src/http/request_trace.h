// RequestTrace: the span of one public request at the gateway (tracing/).
//
// Started from the request's traceparent and tracestate headers (W3C Trace
// Context; a new trace when absent or invalid), it records events on the
// way (authenticated, rate limit, admission decision) and what the
// request's answer says (its batch, its time queued), and ends when the
// response's last part is handed to the connection (Wrap()). Then, when its
// trace is sampled, it exports the server span and, for a request that went
// out in a batch, its "sluice.queue" child span (arrival to dispatch); the
// batch's own span links to this one (core/dispatch_group_tracing.cc).
//
// Thread-safe: the front door records from its I/O thread and the
// completion from whichever thread completes; a request split in several
// (an embeddings array) completes from several.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/request.h"
#include "http/types.h"
#include "tracing/tracer.h"

namespace sluice::http {

class RequestTrace : public std::enable_shared_from_this<RequestTrace> {
 public:
  // `name` is the span's ("POST /v1/inference"); `now` the request's start
  // on the service's clock (queue times are measured on it).
  static std::shared_ptr<RequestTrace> Start(const tracing::Tracer& tracer,
                                             const HttpRequest& request, std::string name,
                                             TimePoint now);

  // The request's span: what InferenceRequest::trace carries.
  const tracing::SpanContext& context() const { return context_; }
  bool sampled() const { return context_.sampled; }

  // No-ops unless sampled.
  void Event(std::string name, std::vector<tracing::Attribute> attributes = {});
  void Attribute(std::string key, tracing::Attribute::Value value);
  // What the answer of `request` (one of the call's) says: its batch, its
  // attempts and the time it queued.
  void Answered(const InferenceRequest& request, const InferenceOutcome& outcome);

  // `reply`, ending the span when the response's last part is handed over
  // (its status from the first part). Unsampled: `reply` as it is.
  Reply Wrap(Reply reply);

 private:
  RequestTrace(const tracing::Tracer& tracer, tracing::SpanContext context, tracing::SpanId parent,
               std::string trace_state, std::string name, TimePoint now);
  int64_t UnixNanos(TimePoint t) const;
  void End(int status);

  struct Queued {
    TimePoint arrival, dispatched;
    uint64_t batch_id = 0;
    int attempts = 0;
  };

  const tracing::Tracer& tracer_;
  const tracing::SpanContext context_;
  const tracing::SpanId parent_;
  const std::string trace_state_;
  const std::string name_;
  const TimePoint start_;           // on the service's clock
  const int64_t start_unix_nanos_;  // the same instant, Unix time
  std::mutex mu_;
  std::vector<tracing::SpanEvent> events_;      // GUARDED_BY(mu_)
  std::vector<tracing::Attribute> attributes_;  // GUARDED_BY(mu_)
  std::vector<Queued> queued_;                  // GUARDED_BY(mu_)
  int status_ = 0;                              // GUARDED_BY(mu_): the first part's
};

}  // namespace sluice::http
