// RequestTrace: the span of one public request of a sampled trace at the
// gateway (tracing/).
//
// Started from the request's traceparent and tracestate headers (W3C Trace
// Context; a new trace when absent or invalid), it records events on the
// way (authenticated, rate limit, admission decision) and what the
// request's answer says (its batch, its time queued), and ends when the
// response's last part is handed to the connection (Wrap()). Then it
// exports the server span and, for a request that went out in a batch, its
// "sluice.queue" child span (arrival to dispatch); the batch's own span
// links to this one (core/dispatch_group_tracing.cc).
//
// Thread-safe: the front door records from its I/O thread and the
// completion from whichever thread completes; a request split in several
// (an embeddings array) completes from several.
#pragma once

#include <atomic>
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
  // The span of `request` on `route` (its span is "<method> <route>"), or
  // null when its trace is not sampled: an unsampled request costs no span
  // and no allocation, and its batches are sampled only for other members.
  // `now`: the request's start on the service's clock (queue times are
  // measured on it).
  static std::shared_ptr<RequestTrace> Start(const tracing::Tracer& tracer,
                                             const HttpRequest& request, std::string_view route,
                                             TimePoint now);

  // The request's span: what InferenceRequest::trace carries.
  const tracing::SpanContext& context() const { return context_; }

  void Event(std::string name, std::vector<tracing::Attribute> attributes = {});
  void Attribute(std::string key, tracing::Attribute::Value value);
  // What the answer of `request` (one of the call's) says: its batch, its
  // attempts and the time it queued.
  void Answered(const InferenceRequest& request, const InferenceOutcome& outcome);

  // `reply`, ending the span when the response's last part is handed over
  // (its status from the first part) and nothing holds it open.
  Reply Wrap(Reply reply);
  // Holds the span open until the returned handle is destroyed, for a
  // handler that records after the answer may already have gone (a request
  // can complete inside Submit()).
  [[nodiscard]] std::shared_ptr<void> KeepOpen();

 private:
  RequestTrace(const tracing::Tracer& tracer, tracing::SpanContext context, tracing::SpanId parent,
               std::string trace_state, std::string name, TimePoint now);
  int64_t UnixNanos(TimePoint t) const;
  void Release();  // the last release ends the span
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
  std::atomic<int> holds_{1};                   // the reply's, and KeepOpen()'s
};

}  // namespace sluice::http
