// The wire forms of a queued request and of its result, and their
// conversions to and from the in-process types (core/request.h).
//
// A WireRequest holds what a worker needs to run the request and what the
// gateway needs to route the answer back. Times are wall-clock epoch
// microseconds, since gateways and workers are different processes (and
// machines): each side converts with a WallClockAnchor taken from its own
// clocks, so clock skew between machines shifts deadlines by the skew.
//
// Encoding: compact JSON objects with short keys (written directly,
// common/json_writer.h; read with Boost.JSON); a result
// message on a gateway's channel is a JSON array of result objects (the
// complete script joins the encoded results with commas). Error codes travel
// as ErrorCodeName() strings ("backend_error"), so that a reordered enum in
// another build cannot change their meaning; unknown names decode as
// kInternal.
//
// Every JSON string is encoded as valid UTF-8 (invalid bytes become
// U+FFFD), so a backend's bytes can never make a message unreadable.
// Decoding is tolerant too: a message holding invalid UTF-8 is read with its
// JSON strings repaired, and a result batch loses only its unreadable items,
// never the whole message. (An entry's gateway id, id and model are not
// JSON: they name Redis keys and channels, and are kept as they are.)
//
//   entry:   "tier|dispatch_deadline_us|arrival_us|attempts|gateway_id|"
//            + {"key","tn","in","mt","temp"?,"p"?,"td","ct","tpm"?,"as"?,"tp"?}
//            (the id is the entry's hash field and the model its key's:
//            neither is repeated, since every byte a script is given is
//            hashed by Lua)
//   result:  {"id","c","msg"?,"out"?,"tok"?,"mv"?,"b"?,"bs"?,"r"?,"qw"?,
//             "acc"?,"w"?,"dt"?}
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/request.h"

namespace sluice::redis {

struct WireRequest {
  std::string id;          // request id, unique across gateways
  std::string gateway_id;  // owner: results go to its channel
  std::string key_id;      // API key id (for the request log, limits)
  uint32_t tier = 0;       // index into the tier table
  std::string tier_name;
  std::string model;
  std::string input;
  int max_tokens = 16;
  std::optional<double> temperature;
  std::string params_json;           // the "parameters" object as sent; may be empty
  int64_t arrival_us = 0;            // epoch µs
  int64_t dispatch_deadline_us = 0;  // epoch µs; not dispatched by then: 504
  int64_t total_deadline_us = 0;     // epoch µs; not answered by then: 504
  int64_t charged_tokens = 0;        // charged to the key's limit at admission
  int64_t tokens_per_minute = 0;     // the key's token limit then (0 = none)
  bool async = false;                // submitted asynchronously ("as": 1; absent or 0: not)
  // The request's span at the gateway as a W3C traceparent ("tp"), when
  // traced: the worker's batch spans link to it. A value that is not a
  // valid traceparent reads as none.
  std::string traceparent;
  // Claims so far minus one: 0 on the first claim, +1 per reaped lease. Not
  // encoded: the claim sets it from the entry's prefix (scripts.h).
  uint32_t attempts = 0;
  // Not encoded: the lease of the claim that returned it (set by
  // RedisBatchClaimer; its answer names it: WireResult::lease).
  std::string lease;
};

struct WireResult {
  std::string id;
  ErrorCode code = ErrorCode::kOk;
  std::string message;  // error message when code != kOk (client-safe)
  std::string output;
  uint32_t tokens_used = 0;
  std::string model_version;
  uint64_t batch_id = 0;
  uint32_t batch_size = 0;
  std::string reason;  // machine-readable error detail, e.g. "worker_lost"
  int64_t queue_wait_us = 0;
  int64_t accelerator_us = 0;
  std::string worker_id;
  // Internal side of a failure (InferenceOutcome::detail): for the
  // gateway's request log, never for the client.
  std::string detail;
  // Not encoded: where the request was queued and whose it is, so that
  // the complete step need not read its entry (-1 / empty = unknown).
  int32_t queue_tier = -1;
  std::string owner_gateway_id;
  // Not encoded: the lease under which it was claimed (WireRequest::lease;
  // empty = unknown), so that the complete step releases the batch's lease
  // with its last answer.
  std::string lease;
  // Not encoded: claimed on its first attempt (WireRequest::attempts == 0),
  // so never leased before: with its owner and lease known, the complete
  // step need not read its entry (scripts.h). false = unknown.
  bool first_attempt = false;
  // Not encoded: what the complete step settles on the key's token limit
  // (charged at enqueue, refunded down to tokens_used). Empty key = none.
  std::string charged_key_id;
  int64_t charged_tokens = 0;
  int64_t tokens_per_minute = 0;
  // Not encoded: the request's total deadline (SystemClock): nobody waits
  // for the answer after it (its gateway has answered 504, or its task has
  // expired). A worker whose complete call finds Redis unavailable sends
  // the answer again until then. max = unknown (not sent again).
  TimePoint total_deadline = TimePoint::max();
};

// A request as queued in Redis (scripts.h): the prefix the scripts read,
// then the payload (above). EncodeEntry writes attempts 0; DecodeEntry
// reads request `id` of `model` back, attempts from the prefix. Errors:
// kInvalidArgument when the prefix is malformed, the payload is not a JSON
// object, or a field is missing or of the wrong type.
std::string EncodeEntry(const WireRequest& request);
Result<WireRequest> DecodeEntry(std::string_view entry, std::string_view id,
                                std::string_view model);

std::string EncodeResult(const WireResult& result);
Result<WireResult> DecodeResult(std::string_view json);
// A channel message: a JSON array of results. Errors (kInvalidArgument) only
// when the message is not a JSON array. An item that cannot be read is left
// out, or, when its "id" can be read, becomes a kInternal result for that id
// (so its client is answered at once); *bad_items (optional) counts them.
Result<std::vector<WireResult>> DecodeResultBatch(std::string_view json,
                                                  size_t* bad_items = nullptr);

// Pairs "now" on the steady clock with "now" on the wall clock, to convert
// between steady TimePoints and epoch microseconds.
struct WallClockAnchor {
  TimePoint steady;
  int64_t epoch_us = 0;

  // `clock` is the process's steady clock; the wall clock is the system's.
  static WallClockAnchor Now(const Clock& clock);
  int64_t ToEpochUs(TimePoint t) const { return epoch_us + ToMicros(t - steady); }
  TimePoint ToSteady(int64_t epoch) const { return steady + Micros(epoch - epoch_us); }
};

// Gateway side: the wire form of an admitted request owned by `gateway_id`.
WireRequest ToWireRequest(const InferenceRequest& request, std::string_view gateway_id,
                          const WallClockAnchor& now);
// Worker side: a request to hand to a dispatcher (no completion attached;
// model_index and the principal's rate limit are left for the caller).
RequestPtr FromWireRequest(const WireRequest& wire, const WallClockAnchor& now);

WireResult ToWireResult(std::string_view id, const InferenceOutcome& outcome,
                        std::string_view worker_id);
// Gateway side. `reason` strings are interned (at most 256 distinct ones;
// beyond, reason stays nullptr).
InferenceOutcome ToOutcome(const WireResult& result);

}  // namespace sluice::redis
