#include "store/durable_request_log.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "store/record_codec.h"

namespace sluice::store {
namespace {

constexpr int64_t kMaxRetentionHours = 876'000;  // 100 years

LogWriter::Options WriterOptions(const DurableLogOptions& o, const std::string& backend) {
  LogWriter::Options w;
  w.buffer_capacity = o.buffer_capacity;
  w.flush_batch = o.flush_batch;
  w.flush_interval_ms = o.flush_interval_ms;
  w.reconnect_backoff_initial_ms = o.reconnect_backoff_initial_ms;
  w.reconnect_backoff_max_ms = o.reconnect_backoff_max_ms;
  w.close_timeout_ms = o.close_timeout_ms;
  // Bounded by Validate(), so this never overflows.
  w.retention_ms = std::clamp<int64_t>(o.retention_hours, 0, kMaxRetentionHours) * 3'600'000;
  w.prune_interval_ms = o.prune_interval_ms;
  w.wall_now = o.wall_now;
  w.backend = backend;
  w.metrics = o.metrics;
  return w;
}

}  // namespace

Status DurableRequestLog::Validate(const DurableLogOptions& o) {
  if (o.memory_capacity < 16) return InvalidArgument("memory_capacity must be >= 16");
  if (o.retention_hours < 0 || o.retention_hours > kMaxRetentionHours) {
    return InvalidArgument("retention_hours must be between 0 and " +
                           std::to_string(kMaxRetentionHours) + ", got " +
                           std::to_string(o.retention_hours));
  }
  return LogWriter::Validate(WriterOptions(o, ""));
}

Result<DurableRequestLog::Parts> DurableRequestLog::MakeParts(
    const DurableLogOptions& o, const std::string& backend, std::unique_ptr<LogSink> sink,
    bool sink_open, std::unique_ptr<RecordReader> reader) {
  auto memory = MemoryRequestLog::Create({o.memory_capacity});
  if (!memory.ok()) return memory.status();
  auto writer = LogWriter::Create(WriterOptions(o, backend), std::move(sink), sink_open);
  if (!writer.ok()) return writer.status();
  return Parts{std::move(memory).value(), std::move(writer).value(), std::move(reader)};
}

DurableRequestLog::DurableRequestLog(std::string worker_id, Parts parts)
    : worker_id_(std::move(worker_id)),
      memory_(std::move(parts.memory)),
      writer_(std::move(parts.writer)),
      reader_(std::move(parts.reader)) {}

DurableRequestLog::~DurableRequestLog() { Close(); }

void DurableRequestLog::OnAdmitted(const RequestPtr& req) {
  memory_->OnAdmitted(req);
  RequestRow r;
  r.id = RowId(req->id);
  r.labels = labels_.Intern(req->principal.key_id, req->principal.tier_name, req->model, {});
  r.stage = RequestStage::kQueued;
  r.created_at = std::chrono::system_clock::now();
  writer_->Append(std::move(r));
}

void DurableRequestLog::OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                                   double latency_ms) {
  memory_->OnFinished(req, outcome, latency_ms);
  if (!req.admitted) return;  // refused before the queue: not a logged request
  // Built from the request itself, so a finish is recorded even when the
  // memory window has already moved past its admission.
  RequestRow r;
  r.id = RowId(req.id);
  // Batched requests ran on this worker (the outcome does not say which).
  const std::string_view worker = outcome.batch_id != 0 ? worker_id_ : std::string_view();
  r.labels = labels_.Intern(req.principal.key_id, req.principal.tier_name, req.model, worker);
  r.stage = outcome.status.ok() ? RequestStage::kCompleted : RequestStage::kFailed;
  r.latency_ms = latency_ms;
  r.http_status = HttpStatusFor(outcome.status.code());
  r.error = FailureText(outcome);  // empty on success
  r.batch_id = outcome.batch_id;
  r.tokens_used = outcome.tokens_used;
  r.completed_at = std::chrono::system_clock::now();
  // The admission row keeps its own created_at; this one counts when the
  // admission record was dropped.
  r.created_at = r.completed_at - std::chrono::duration_cast<WallTime::duration>(
                                      std::chrono::duration<double, std::milli>(latency_ms));
  writer_->Append(std::move(r));
}

void DurableRequestLog::OnBatchDone(const BatchRecord& batch) { writer_->Append(batch); }

std::optional<RequestRecord> DurableRequestLog::Lookup(const std::string& id) const {
  if (auto r = memory_->Lookup(id)) return r;
  if (auto r = writer_->FindRequest(id)) return r;
  return reader_->Find(id);
}

}  // namespace sluice::store
