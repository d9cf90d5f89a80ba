// The wire formats `sluice model-server` serves, parsed and written without
// I/O: the generic batch protocol (POST /v1/batch), OpenAI-compatible
// /v1/completions, /v1/embeddings and /v1/chat/completions (streamed or
// not), and KServe v2
// (POST /v2/models/{model}/infer with a BYTES tensor of shape [n, 1]).
// The client side of the same formats is backends/http/batch_protocol.h.
//
// Parse errors are kInvalidArgument with a message naming the field (the
// server answers them 400). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::modelserver {

enum class Api { kBatch, kCompletions, kEmbeddings, kKServe, kChat };

struct ApiItem {
  std::string input;
  int max_tokens = 16;  // >= 1
};

struct ApiRequest {
  Api api = Api::kBatch;
  std::string model;
  std::vector<ApiItem> items;  // non-empty; kChat: one, its input "role: content" lines
  bool stream = false;         // kChat: answer as server-sent events
  bool include_usage = false;  // kChat: stream_options.include_usage
};

constexpr size_t kMaxItemsPerBatch = 4096;

// `path_model` is the {model} of a KServe path (ignored for other APIs).
Result<ApiRequest> ParseApiRequest(Api api, std::string_view body, std::string_view path_model);

struct ItemReply {
  std::string error;  // non-empty: this item failed (generic protocol only)
  std::string output;
  uint32_t tokens_used = 0;
  std::vector<double> embedding;  // kEmbeddings only
};

// REQUIRES: items.size() == request.items.size(). kChat: the whole answer
// as one chat.completion object (a stream is written by the server).
std::string EncodeApiReply(const ApiRequest& request, const std::vector<ItemReply>& items,
                           std::string_view model_version);

// A streamed chat answer of `output` (`tokens_used` in all) as the data of
// its server-sent events, in order: the assistant role, one per word (with
// the spaces before it), the finish, the usage when request.include_usage,
// and "[DONE]".
std::vector<std::string> ChatStreamEvents(const ApiRequest& request, std::string_view output,
                                          uint32_t tokens_used);

}  // namespace sluice::modelserver
