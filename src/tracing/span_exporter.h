// SpanExporter: sends finished spans to an OTLP/HTTP receiver (JSON POSTed
// to `endpoint`), off the request path. Export() only appends to a bounded
// queue; a full queue drops the span and counts it. One thread, named
// "otlp-export", sends batches of up to max_batch_spans: when a batch is
// full, or every interval_ms. A batch the receiver refuses or does not
// answer in time (timeout_ms to connect, then timeout_ms to send and read)
// is dropped (counted, logged at most every 10 s): tracing never holds
// requests up or grows without bound. The receiver's name is resolved on
// the exporter's thread, once and again after a failure.
//
// Thread-safe. The destructor sends what is queued (one try per batch) and
// joins the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>

#include "common/log_throttle.h"
#include "common/status.h"
#include "tracing/otlp_json.h"
#include "tracing/span.h"

namespace sluice::tracing {

class SpanExporter {
 public:
  struct Options {
    // http://HOST:PORT/PATH; without a path, /v1/traces (OTLP's).
    std::string endpoint;
    Resource resource;
    size_t max_queue_spans = 8'192;  // >= max_batch_spans
    size_t max_batch_spans = 512;    // > 0
    int64_t interval_ms = 1'000;     // > 0
    int64_t timeout_ms = 5'000;      // > 0: to connect, then to send and read
  };
  struct Stats {
    uint64_t exported = 0;  // spans the receiver accepted
    uint64_t dropped = 0;   // spans refused because the queue was full
    uint64_t failed = 0;    // spans in batches the receiver refused or missed
    uint64_t batches = 0;   // POSTs that succeeded
  };

  // Errors: kInvalidArgument naming the field ("otlp_endpoint: ...").
  static Result<std::unique_ptr<SpanExporter>> Create(Options options);
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Never blocks on the network.
  void Export(Span&& span);
  Stats stats() const;

 private:
  explicit SpanExporter(Options options);
  void Run();
  // One POST of `spans`; false when it failed.
  bool Send(const std::vector<Span>& spans);

  const Options options_;                                   // endpoint: with its path
  std::optional<boost::asio::ip::tcp::endpoint> resolved_;  // the exporter thread's
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Span> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::atomic<uint64_t> exported_{0}, dropped_{0}, failed_{0}, batches_{0};
  LogThrottle failures_log_;
  std::thread thread_;  // last: starts once the rest exists
};

}  // namespace sluice::tracing
