// OtlpReceiver: an OTLP/HTTP trace receiver for tests, on 127.0.0.1 and a
// port the kernel picks. It accepts POST /v1/traces with a JSON body (what
// tracing::SpanExporter and any OpenTelemetry SDK send as
// application/json), decodes each span of the OTLP JSON mapping and keeps
// it; it answers 200 {} (or the status set with RespondWith()).
//
// One thread serves one connection at a time (keep-alive honoured); the
// destructor stops it. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::testing {

// A span as it arrived, decoded from OTLP JSON.
struct ReceivedSpan {
  std::string trace_id;        // 32 hex digits
  std::string span_id;         // 16 hex digits
  std::string parent_span_id;  // "" for a root
  std::string trace_state;
  std::string name;
  int kind = 0;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  std::map<std::string, std::string> attributes;           // every value as text
  std::vector<std::string> events;                         // their names
  std::vector<std::pair<std::string, std::string>> links;  // (trace id, span id)
  int status_code = 0;                                     // 0 unset, 1 ok, 2 error
  std::map<std::string, std::string> resource;             // the resource's attributes
};

class OtlpReceiver {
 public:
  OtlpReceiver();
  ~OtlpReceiver();
  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;

  uint16_t port() const { return port_; }
  // http://127.0.0.1:PORT/v1/traces
  std::string endpoint() const;

  // Every span received so far, in arrival order.
  std::vector<ReceivedSpan> spans() const;
  size_t posts() const { return posts_.load(); }
  // The request bodies that were not valid OTLP JSON.
  size_t bad_posts() const { return bad_posts_.load(); }
  // Waits until `done(spans())` is true, or `timeout`; returns whether it was.
  bool WaitFor(const std::function<bool(const std::vector<ReceivedSpan>&)>& done,
               std::chrono::milliseconds timeout) const;
  // The status later POSTs are answered with (default 200).
  void RespondWith(int status) { status_.store(status); }
  // While held, a POST that arrived waits (at most 10 s) before it is read
  // into spans() and answered: a receiver too slow for its senders.
  void Hold(bool held) { held_.store(held); }
  // POSTs that arrived so far, held ones included.
  size_t arrived() const { return arrived_.load(); }

 private:
  struct Impl;
  void Serve();

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<ReceivedSpan> spans_;  // GUARDED_BY(mu_)
  std::atomic<size_t> posts_{0}, bad_posts_{0};
  std::atomic<int> status_{200};
  std::atomic<bool> held_{false};
  std::atomic<size_t> arrived_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace sluice::testing
