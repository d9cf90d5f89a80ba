// The wire format of the asynchronous API (the seeds' contract):
//
//   POST /v1/inference with `Prefer: respond-async` (RFC 7240) or
//   "async": true  ->  202 {"task_id", "status": "PENDING"}
//   GET /v1/result/{task_id}[?wait_ms=N]  ->  200 {"task_id", "status":
//     "PENDING" | "SUCCESS" | "FAILED", "output"?, "metadata"?, "error"?}
//
// A SUCCESS carries "output" and "metadata" as the synchronous response
// does; a FAILED carries "error": {"code", "message", "http_status"[,
// "reason"]}, what the synchronous API would have answered. Also the query
// and header helpers these routes share. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "core/request.h"
#include "core/task_store.h"
#include "http/types.h"

namespace sluice::http {

// Whether any Prefer header of `request` holds the respond-async preference
// (names compared case-insensitively; parameters and other preferences
// ignored).
bool PrefersRespondAsync(const HttpRequest& request);

// The value of `name` in the query string of `target` (undecoded), or "".
std::string_view QueryParam(std::string_view target, std::string_view name);

// ?wait_ms=N of a result request: 0 when absent; at most `max_ms`.
// kInvalidArgument naming the parameter otherwise.
Status ParseWaitMs(std::string_view target, int64_t max_ms, int64_t* wait_ms);

// What the answer to a task's request becomes in the store.
TaskAnswer ToTaskAnswer(const InferenceOutcome& outcome, int64_t latency_ms);

// {"task_id", "status": "PENDING"}
std::string EncodeTaskAccepted(std::string_view task_id);
// The GET /v1/result/{task_id} body for `task`.
std::string EncodeTask(const TaskView& task);

}  // namespace sluice::http
