// BatchProtocol: how one batch is written for, and read back from, a fixed
// inference API over HTTP. Pure encode/decode, no I/O; HttpBackend does the
// sending. Implementations (factories below):
//
//   generic  POST {base}             {"model","inputs":[str..],"parameters":[{..}..]}
//                                    -> {"outputs":[{"output","tokens_used"}|{"error"}..],
//                                        "model_version"}
//            (base = the endpoint URL's path; "/v1/batch" when it has none)
//   openai   POST {base}/v1/completions {"model","prompt":[str..],"max_tokens"
//                                     [,"temperature"][, the items' other parameters]}
//                                    -> {"choices":[{"index","text"}..],"usage","model"}
//            POST {base}/v1/embeddings  {"model","input":[str..]}
//                                    -> {"data":[{"index","embedding":[..]}..]}
//   kserve   POST {base}/v2/models/{model}/infer   KServe v2 / Triton: BYTES tensor
//            "text_input" [n,1] (+ INT32 "max_tokens" [n,1]) -> BYTES "text_output" [n,1]
//            mapped by row (+ optional INT32/INT64 "tokens_used" [n,1])
//
// Decode() never throws and never trusts the reply: a non-2xx status, JSON
// that does not parse, a missing or mistyped field, a wrong number of
// outputs, or an out-of-range / repeated index is a batch-level kBackendError
// whose message says what was wrong. A per-item error (generic protocol only;
// the others have no way to express one) fails only that item. Results are
// in input order.
//
// Parameters: the generic protocol sends each item's parameters object (its
// extra parameters plus max_tokens and temperature), kserve each item's
// max_tokens as a row; one call carries items whose parameters differ.
// OpenAI completions take one set of parameters per call, so Groups() splits
// a batch by the items' whole parameters object (max_tokens, temperature and
// every other parameter such as top_p or stop, compared as canonical JSON:
// key order does not matter) and HttpBackend makes one call per group, whose
// body carries exactly that group's parameters, except "model", "prompt",
// "stream" and "n", which the protocol owns (one non-streamed choice per
// prompt). Embeddings take no generation parameters: one call per batch.
//
// tokens_used is the item's own input estimate plus its own output estimate
// (ceil(bytes/4)) for openai and, without a "tokens_used" tensor, kserve:
// those APIs report usage per call, not per item. Embeddings come back as
// `output` = the JSON array text.
//
// Thread-safe (immutable after construction).
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/backend.h"
#include "core/request.h"

namespace sluice::http_backend {

enum class ProtocolKind { kGeneric, kOpenAiCompletions, kOpenAiEmbeddings, kKServe };

// "http" -> generic, "openai" + openai_api ("completions"/"embeddings"),
// "kserve". kInvalidArgument otherwise.
Result<ProtocolKind> ProtocolKindFor(std::string_view backend_kind, std::string_view openai_api);
const char* ProtocolName(ProtocolKind kind);  // "http", "openai", "kserve"

struct EncodedBatch {
  std::string target;  // request path, e.g. "/v1/completions"
  std::string body;    // JSON
};

class BatchProtocol {
 public:
  virtual ~BatchProtocol() = default;

  // The items that may go in one call, as indices into `batch`: every index
  // exactly once, ascending within a group, groups in the order of their
  // first index. HttpBackend sends each group as its own batch (Encode(),
  // POST, Decode()), one after another. Default: one group of all items.
  // REQUIRES: batch non-empty.
  virtual std::vector<std::vector<size_t>> Groups(const std::vector<RequestPtr>& batch) const {
    std::vector<size_t> all(batch.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return {std::move(all)};
  }

  // REQUIRES: batch non-empty, and one group of Groups() (for OpenAI
  // completions the first item's parameters are sent for all).
  virtual EncodedBatch Encode(const std::vector<RequestPtr>& batch) const = 0;

  // `http_status` and `body` of the reply to a batch of `batch_size` items
  // (the items are passed for token estimates). Fills model_version from the
  // reply's "model_version" (generic, kserve), else leaves it empty.
  virtual BatchResult Decode(int http_status, std::string_view body,
                             const std::vector<RequestPtr>& batch) const = 0;
};

struct ProtocolOptions {
  ProtocolKind kind = ProtocolKind::kGeneric;
  std::string model;                             // the model name the server knows
  std::string base_path;                         // endpoint URL path, no trailing '/'; "" for none
  std::string kserve_input_name = "text_input";  // kserve: BYTES input tensor
  std::string kserve_output_name = "text_output";  // kserve: BYTES output tensor
};

// Errors: an empty model name, empty kserve tensor names.
Result<std::unique_ptr<BatchProtocol>> MakeBatchProtocol(const ProtocolOptions& options);

// --- shared by the implementations (protocol_common.cc) ---
namespace protocol_internal {
// kBackendError "<what>: <detail>" for a reply that cannot be used.
Status Malformed(std::string_view what, std::string_view detail);
// Non-2xx: kBackendError with the status and the start of the body (an
// OpenAI/KServe style {"error": ...} message when there is one).
Status HttpFailure(int http_status, std::string_view body);
// The "parameters" object of one item as JSON text: the client's extra
// parameters plus max_tokens (and temperature when set).
std::string ItemParametersJson(const InferenceRequest& request);
// ceil(bytes/4), at least 1 (core/tokens.h's estimate).
uint32_t EstimateTokens(std::string_view text);
// The checks every protocol's Decode() starts with: a 2xx status and a JSON
// object body. On failure *status is the batch error (HttpFailure or
// Malformed(`what`, ...)) and the returned value is null.
boost::json::value ParseReplyObject(int http_status, std::string_view body, std::string_view what,
                                    Status* status);
// The implementations, one per file; options already validated.
std::unique_ptr<BatchProtocol> MakeGenericProtocol(const ProtocolOptions& options);
std::unique_ptr<BatchProtocol> MakeOpenAiProtocol(const ProtocolOptions& options);
std::unique_ptr<BatchProtocol> MakeKServeProtocol(const ProtocolOptions& options);
}  // namespace protocol_internal

}  // namespace sluice::http_backend
