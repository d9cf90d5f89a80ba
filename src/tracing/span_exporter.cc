#include "tracing/span_exporter.h"

#include <chrono>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/http_fetch.h"
#include "common/thread_name.h"

namespace sluice::tracing {

Result<std::unique_ptr<SpanExporter>> SpanExporter::Create(Options o) {
  Result<HttpTarget> target = ParseHttpUrl(o.endpoint);
  if (!target.ok()) return InvalidArgument("otlp_endpoint: " + target.status().message());
  if (o.max_batch_spans == 0) return InvalidArgument("export_batch_spans: must be > 0");
  if (o.max_queue_spans < o.max_batch_spans) {
    return InvalidArgument("max_queue_spans: must be at least export_batch_spans");
  }
  if (o.interval_ms <= 0) return InvalidArgument("export_interval_ms: must be > 0");
  if (o.timeout_ms <= 0) return InvalidArgument("export_timeout_ms: must be > 0");
  // As parsed (a trailing '/' dropped); OTLP's path when there is none.
  o.endpoint = "http://" + target->host_header +
               (target->base_path.empty() ? std::string("/v1/traces") : target->base_path);
  return std::unique_ptr<SpanExporter>(new SpanExporter(std::move(o)));
}

SpanExporter::SpanExporter(Options options)
    : options_(std::move(options)), thread_([this] { Run(); }) {}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void SpanExporter::Export(Span&& span) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue_spans) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(span));
    wake = queue_.size() == options_.max_batch_spans;
  }
  if (wake) wake_.notify_one();
}

SpanExporter::Stats SpanExporter::stats() const {
  Stats s;
  s.exported = exported_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.failed = failed_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  return s;
}

void SpanExporter::Run() {
  SetCurrentThreadName("otlp-export");
  const auto interval = std::chrono::milliseconds(options_.interval_ms);
  auto next_flush = std::chrono::steady_clock::now() + interval;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_until(lock, next_flush,
                     [this] { return stopping_ || queue_.size() >= options_.max_batch_spans; });
    // Full batches go at once; a partial one when the interval is up or
    // the exporter stops.
    const bool flush = stopping_ || std::chrono::steady_clock::now() >= next_flush;
    if (flush) next_flush = std::chrono::steady_clock::now() + interval;
    while (queue_.size() >= options_.max_batch_spans || (flush && !queue_.empty())) {
      std::vector<Span> batch;
      const size_t n = std::min(queue_.size(), options_.max_batch_spans);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();  // not held while sending
      const bool sent = Send(batch);
      if (sent) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
        batches_.fetch_add(1, std::memory_order_relaxed);
      } else {
        failed_.fetch_add(batch.size(), std::memory_order_relaxed);
      }
      lock.lock();
      if (!sent && stopping_) {
        // Shutting down with a receiver that does not answer: one timeout
        // is enough.
        failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
        queue_.clear();
      }
    }
    if (stopping_ && queue_.empty()) return;
  }
}

bool SpanExporter::Send(const std::vector<Span>& spans) {
  Result<HttpTarget> target = ParseHttpUrl(options_.endpoint);  // checked by Create()
  Status error = target.status();
  // Resolved once, and again after a failure (a receiver may move).
  if (target.ok() && !resolved_) {
    auto endpoint = ResolveTarget(*target);
    if (endpoint.ok()) resolved_ = *endpoint;
    error = endpoint.status();
  }
  if (target.ok() && resolved_) {
    FetchRequest req;
    req.method = "POST";
    req.path = "";  // the endpoint's own path
    req.body = EncodeOtlpJson(options_.resource, spans);
    req.connect_timeout_ms = options_.timeout_ms;
    req.timeout_ms = options_.timeout_ms;
    auto res = HttpFetch(*resolved_, *target, req);
    if (res.ok() && res->status >= 200 && res->status < 300) return true;
    error = res.ok()
                ? Status(ErrorCode::kUnavailable, "answered HTTP " + std::to_string(res->status))
                : res.status();
    resolved_.reset();
  }
  if (failures_log_.Allow()) {
    spdlog::warn("tracing: {} spans not exported to {}: {}", spans.size(), options_.endpoint,
                 error.message());
  }
  return false;
}

}  // namespace sluice::tracing
