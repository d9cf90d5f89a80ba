// RequestLog: the record of what happened to each request.
//
// The front door calls OnAdmitted() when a request enters the queue and
// OnFinished() when its answer is written; Lookup() serves
// /internal/requests/{id}. Implementations never block the caller on I/O:
// MemoryRequestLog keeps a bounded window of recent requests; durable
// SQLite/PostgreSQL logs come with scale-out. Thread-safe.
#pragma once

#include <optional>
#include <string>

#include "core/request.h"

namespace sluice {

enum class RequestStage { kQueued, kProcessing, kCompleted, kFailed };
const char* RequestStageName(RequestStage stage);

struct RequestRecord {
  std::string id;
  std::string key_id;
  std::string tier;
  std::string model;
  RequestStage stage = RequestStage::kQueued;
  double latency_ms = 0;  // end to end, when finished
  int http_status = 0;    // when finished
  std::string error;      // message when failed
  uint64_t batch_id = 0;
  uint32_t tokens_used = 0;
};

class RequestLog {
 public:
  virtual ~RequestLog() = default;
  virtual void OnAdmitted(const RequestPtr& req) = 0;
  // Called for every admitted request once its answer is known; a request
  // the log never saw admitted (refused by the queue) is ignored.
  virtual void OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                          double latency_ms) = 0;
  virtual std::optional<RequestRecord> Lookup(const std::string& id) const = 0;
};

}  // namespace sluice
