// The wire formats `sluice model-server` serves, parsed and written without
// I/O: the generic batch protocol (POST /v1/batch), OpenAI-compatible
// /v1/completions and /v1/embeddings, and KServe v2
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

enum class Api { kBatch, kCompletions, kEmbeddings, kKServe };

struct ApiItem {
  std::string input;
  int max_tokens = 16;  // >= 1
};

struct ApiRequest {
  Api api = Api::kBatch;
  std::string model;
  std::vector<ApiItem> items;  // non-empty
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

// REQUIRES: items.size() == request.items.size().
std::string EncodeApiReply(const ApiRequest& request, const std::vector<ItemReply>& items,
                           std::string_view model_version);

}  // namespace sluice::modelserver
