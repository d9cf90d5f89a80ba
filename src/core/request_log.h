// RequestLog: the record of what happened to each request.
//
// The front door calls OnAdmitted() when a request enters the queue and
// OnFinished() when its answer is written; the dispatcher may report each
// batch through OnBatchDone(). Lookup() serves /internal/requests/{id}.
// Implementations never block the caller on I/O: MemoryRequestLog keeps a
// bounded window of recent requests; the durable SQLite/PostgreSQL logs
// (src/store/) write in the background. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/request.h"

namespace sluice {

enum class RequestStage { kQueued, kProcessing, kCompleted, kFailed };
const char* RequestStageName(RequestStage stage);

// Wall-clock time, for records kept beyond this process (durable logs).
using WallTime = std::chrono::system_clock::time_point;

struct RequestRecord {
  std::string id;
  std::string key_id;
  std::string tier;
  std::string model;
  RequestStage stage = RequestStage::kQueued;
  double latency_ms = 0;  // end to end, when finished
  int http_status = 0;    // when finished
  std::string error;      // FailureText() of the outcome when failed
  uint64_t batch_id = 0;
  uint32_t tokens_used = 0;
  // Filled by the durable logs (MemoryRequestLog leaves them empty):
  WallTime created_at{};    // when admitted; zero when unknown
  WallTime completed_at{};  // when finished; zero while in flight
  std::string worker_id;    // who ran the batch; empty when unknown
};

// One batch sent to an accelerator, as reported by its dispatcher.
struct BatchRecord {
  uint64_t batch_id = 0;  // unique per worker process run
  std::string model;
  std::string worker_id;  // the endpoint or worker that ran it
  uint32_t size = 0;      // requests in the batch
  WallTime started_at{};
  WallTime completed_at{};
  double duration_ms = 0;  // started -> completed
  bool ok = true;          // false when the whole batch failed
  std::string error;       // message when !ok
};

// What a request log keeps as the error of a failed `outcome`: the message
// the client got, then the internal detail when there is one
// ("<message>; internal: <detail>"). Valid UTF-8 without NUL bytes (what
// databases accept), at most kMaxFailureTextBytes bytes; empty for a success.
inline constexpr size_t kMaxFailureTextBytes = 2'048;
std::string FailureText(const InferenceOutcome& outcome);

class RequestLog {
 public:
  virtual ~RequestLog() = default;
  virtual void OnAdmitted(const RequestPtr& req) = 0;
  // Called for every admitted request once its answer is known; a request
  // the log never saw admitted (refused by the queue) is ignored.
  virtual void OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                          double latency_ms) = 0;
  // Called once per batch, after its results are delivered. Default: ignored.
  virtual void OnBatchDone(const BatchRecord& batch) {}
  virtual std::optional<RequestRecord> Lookup(const std::string& id) const = 0;
};

}  // namespace sluice
