#include "core/memory_request_log.h"

#include <functional>

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

Result<std::unique_ptr<MemoryRequestLog>> MemoryRequestLog::Create(const Options& options) {
  if (options.capacity < kShards) {
    return InvalidArgument("recent request capacity must be >= " + std::to_string(kShards));
  }
  return std::unique_ptr<MemoryRequestLog>(new MemoryRequestLog(options));
}

MemoryRequestLog::Shard& MemoryRequestLog::ShardFor(const std::string& id) const {
  return shards_[std::hash<std::string>{}(id) % kShards];
}

void MemoryRequestLog::OnAdmitted(const RequestPtr& req) {
  Entry e;
  e.record.id = req->id;
  e.record.key_id = req->principal.key_id;
  e.record.tier = req->principal.tier_name;
  e.record.model = req->model;
  e.live = req;
  Shard& s = ShardFor(req->id);
  std::lock_guard lock(s.mu);
  if (s.entries.size() >= per_shard_ && !s.order.empty()) {
    s.entries.erase(s.order.front());
    s.order.pop_front();
  }
  if (s.entries.emplace(req->id, std::move(e)).second) s.order.push_back(req->id);
}

void MemoryRequestLog::OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                                  double latency_ms) {
  Shard& s = ShardFor(req.id);
  std::lock_guard lock(s.mu);
  auto it = s.entries.find(req.id);
  if (it == s.entries.end()) return;  // rejected before admission, or evicted
  RequestRecord& r = it->second.record;
  r.stage = outcome.status.ok() ? RequestStage::kCompleted : RequestStage::kFailed;
  r.latency_ms = latency_ms;
  r.http_status = HttpStatusFor(outcome.status.code());
  r.error = outcome.status.ok() ? "" : outcome.status.message();
  r.batch_id = outcome.batch_id;
  r.tokens_used = outcome.tokens_used;
  it->second.live.reset();
}

std::optional<RequestRecord> MemoryRequestLog::Lookup(const std::string& id) const {
  Shard& s = ShardFor(id);
  RequestPtr live;
  RequestRecord record;
  {
    std::lock_guard lock(s.mu);
    auto it = s.entries.find(id);
    if (it == s.entries.end()) return std::nullopt;
    record = it->second.record;
    live = it->second.live.lock();
  }
  if (live && record.stage == RequestStage::kQueued && live->dispatched()) {
    record.stage = RequestStage::kProcessing;
  }
  return record;
}

}  // namespace sluice
