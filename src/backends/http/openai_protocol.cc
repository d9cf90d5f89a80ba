// OpenAI-compatible batch calls: /v1/completions with a prompt array and
// /v1/embeddings with an input array (see batch_protocol.h).

#include <algorithm>

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"

namespace sluice::http_backend::protocol_internal {
namespace {

namespace json = boost::json;

class OpenAiProtocol final : public BatchProtocol {
 public:
  explicit OpenAiProtocol(const ProtocolOptions& options)
      : embeddings_(options.kind == ProtocolKind::kOpenAiEmbeddings),
        model_(options.model),
        target_(options.base_path + (embeddings_ ? "/v1/embeddings" : "/v1/completions")) {}

  EncodedBatch Encode(const std::vector<RequestPtr>& batch) const override {
    json::object body;
    body["model"] = model_;
    json::array inputs;
    inputs.reserve(batch.size());
    for (const RequestPtr& r : batch) inputs.emplace_back(r->input);
    if (embeddings_) {
      body["input"] = std::move(inputs);
      return {target_, json::serialize(body)};
    }
    body["prompt"] = std::move(inputs);
    int max_tokens = 1;
    for (const RequestPtr& r : batch) max_tokens = std::max(max_tokens, r->params.max_tokens);
    body["max_tokens"] = max_tokens;
    // One temperature per call: sent only when every item asks for the same.
    const auto& t0 = batch.front()->params.temperature;
    const bool same = std::all_of(batch.begin(), batch.end(),
                                  [&](const RequestPtr& r) { return r->params.temperature == t0; });
    if (t0 && same) body["temperature"] = *t0;
    return {target_, json::serialize(body)};
  }

  BatchResult Decode(int http_status, std::string_view body,
                     const std::vector<RequestPtr>& batch) const override {
    BatchResult result;
    json::value v =
        ParseReplyObject(http_status, body,
                         embeddings_ ? "openai embeddings" : "openai completions", &result.status);
    if (!result.status.ok()) return result;
    const json::object* root = &v.as_object();
    const char* list_name = embeddings_ ? "data" : "choices";
    const json::value* list = root->if_contains(list_name);
    if (!list || !list->is_array())
      return Fail(std::string("\"") + list_name + "\" must be an array");
    const json::array& entries = list->as_array();
    if (entries.size() != batch.size()) {
      return Fail("expected " + std::to_string(batch.size()) + " " + list_name + ", got " +
                  std::to_string(entries.size()));
    }
    // The reply's "model" is the served model's name, not a version: the
    // backend reports its configured version instead.
    result.items.resize(batch.size());
    std::vector<bool> seen(batch.size(), false);
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::string at = std::string(list_name) + "[" + std::to_string(i) + "]";
      const json::object* e = entries[i].if_object();
      if (!e) return Fail(at + " must be an object");
      const json::value* index = e->if_contains("index");
      const int64_t* n = index ? index->if_int64() : nullptr;
      if (!n || *n < 0 || static_cast<uint64_t>(*n) >= batch.size()) {
        return Fail(at + ".index must be an integer in [0, " + std::to_string(batch.size()) + ")");
      }
      const size_t k = static_cast<size_t>(*n);
      if (seen[k]) return Fail(at + ".index " + std::to_string(k) + " appears twice");
      seen[k] = true;
      ItemResult& r = result.items[k];
      if (embeddings_) {
        const json::value* emb = e->if_contains("embedding");
        if (!emb || !emb->is_array()) return Fail(at + ".embedding must be an array");
        for (const json::value& x : emb->as_array()) {
          if (!x.is_number()) return Fail(at + ".embedding must hold only numbers");
        }
        r.output = json::serialize(*emb);
        r.tokens_used = EstimateTokens(batch[k]->input);
      } else {
        const json::value* text = e->if_contains("text");
        if (!text || !text->is_string()) return Fail(at + ".text must be a string");
        r.output = std::string(text->as_string());
        r.tokens_used = EstimateTokens(batch[k]->input) + EstimateTokens(r.output);
      }
    }
    return result;
  }

 private:
  BatchResult Fail(const std::string& detail) const {
    BatchResult r;
    r.status = Malformed(embeddings_ ? "openai embeddings" : "openai completions", detail);
    return r;
  }

  const bool embeddings_;
  const std::string model_;
  const std::string target_;
};

}  // namespace

std::unique_ptr<BatchProtocol> MakeOpenAiProtocol(const ProtocolOptions& options) {
  return std::make_unique<OpenAiProtocol>(options);
}

}  // namespace sluice::http_backend::protocol_internal
