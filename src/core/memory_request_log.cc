#include "core/memory_request_log.h"

#include <functional>

#include "common/ids.h"
#include "common/utf8.h"

namespace sluice {

const char* RequestStageName(RequestStage stage) {
  switch (stage) {
    case RequestStage::kQueued:
      return "queued";
    case RequestStage::kProcessing:
      return "processing";
    case RequestStage::kCompleted:
      return "completed";
    case RequestStage::kFailed:
      return "failed";
  }
  return "failed";
}

std::string FailureText(const InferenceOutcome& outcome) {
  if (outcome.status.ok()) return std::string();
  if (outcome.detail.empty()) {
    return SanitizeText(outcome.status.message(), kMaxFailureTextBytes);
  }
  return SanitizeText(outcome.status.message() + "; internal: " + outcome.detail,
                      kMaxFailureTextBytes);
}

Result<std::unique_ptr<MemoryRequestLog>> MemoryRequestLog::Create(const Options& options) {
  if (options.capacity < 16) return InvalidArgument("recent request capacity must be >= 16");
  return std::unique_ptr<MemoryRequestLog>(new MemoryRequestLog(options));
}

size_t MemoryRequestLog::SlotFor(const std::string& id) const {
  std::optional<uint64_t> seq = LocalIdSequence(id);
  size_t key = seq ? static_cast<size_t>(*seq) : std::hash<std::string>{}(id);
  return key % slots_.size();
}

void MemoryRequestLog::OnAdmitted(const RequestPtr& req) {
  size_t i = SlotFor(req->id);
  std::lock_guard lock(stripes_[i % kStripes]);
  Slot& s = slots_[i];
  // assign() reuses the strings' capacity: no allocation once warmed up.
  s.record.id.assign(req->id);
  s.record.key_id.assign(req->principal.key_id);
  s.record.tier.assign(req->principal.tier_name);
  s.record.model.assign(req->model);
  s.record.stage = RequestStage::kQueued;
  s.record.latency_ms = 0;
  s.record.http_status = 0;
  s.record.error.clear();
  s.record.batch_id = 0;
  s.record.tokens_used = 0;
  s.live = req;
}

void MemoryRequestLog::OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                                  double latency_ms) {
  size_t i = SlotFor(req.id);
  std::lock_guard lock(stripes_[i % kStripes]);
  Slot& s = slots_[i];
  if (s.record.id != req.id) return;  // rejected before admission, or overwritten
  // The slot must hold this very request, not another one that carries the
  // same id (ids are unique in practice, see common/ids.h, but a repeat must
  // not let one request's outcome land on another's record).
  if (s.live.lock().get() != &req) return;
  RequestRecord& r = s.record;
  r.stage = outcome.status.ok() ? RequestStage::kCompleted : RequestStage::kFailed;
  r.latency_ms = latency_ms;
  r.http_status = HttpStatusFor(outcome.status.code());
  if (outcome.status.ok()) {
    r.error.clear();
  } else {
    r.error = FailureText(outcome);
  }
  r.batch_id = outcome.batch_id;
  r.tokens_used = outcome.tokens_used;
  s.live.reset();
}

std::optional<RequestRecord> MemoryRequestLog::Lookup(const std::string& id) const {
  size_t i = SlotFor(id);
  RequestPtr live;
  RequestRecord record;
  {
    std::lock_guard lock(stripes_[i % kStripes]);
    const Slot& s = slots_[i];
    if (s.record.id.empty() || s.record.id != id) return std::nullopt;
    record = s.record;
    live = s.live.lock();
  }
  if (live && record.stage == RequestStage::kQueued && live->dispatched()) {
    record.stage = RequestStage::kProcessing;
  }
  return record;
}

}  // namespace sluice
