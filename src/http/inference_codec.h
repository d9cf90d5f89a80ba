// The wire format of POST /v1/inference and of error bodies (the seed's
// contract, field names byte for byte).
//
// Request:  {"model": str, "input": str, "parameters": {"max_tokens": int,
//            "temperature": number, ...}, "async": bool}  ("parameters"
//            and "async" optional; other parameters are kept and forwarded
//            to backends as JSON)
// Response: {"request_id", "output", "metadata": {"tokens_used",
//            "latency_ms", "model_version"}}
// Error:    {"error": {"code", "message", "request_id"}}
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "core/request.h"

namespace sluice::http {

struct DecodedInference {
  std::string model;
  std::string input;
  InferenceParams params;  // max_tokens 0 when absent (the model default applies)
  bool async = false;      // "async": true (answer later, see task_codec.h)
};

// kInvalidArgument with a message naming the field on any problem.
Status DecodeInferenceRequest(std::string_view body, DecodedInference* out);

// {"request_id", "output", "metadata": {"tokens_used", "latency_ms",
// "model_version"[, "cached": true][, "collapsed": true]}}; "cached" only for
// an answer from the result cache, "collapsed" only for one that came from an
// identical request's batch item.
std::string EncodeInferenceResponse(const std::string& request_id, const InferenceOutcome& outcome,
                                    int64_t latency_ms);

// `code` defaults to ErrorCodeName(status.code()). A non-null `reason` adds
// "reason": reason (which limit was hit, why the request was shed).
std::string EncodeError(const Status& status, const std::string& request_id,
                        const char* code = nullptr, const char* reason = nullptr);

}  // namespace sluice::http
