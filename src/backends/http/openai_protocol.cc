// OpenAI-compatible batch calls: /v1/completions with a prompt array and
// /v1/embeddings with an input array (see batch_protocol.h).

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"

namespace sluice::http_backend::protocol_internal {
namespace {

namespace json = boost::json;

// Body fields the protocol sets itself; an item parameter of that name is
// not forwarded (the gateway asks for one non-streamed choice per prompt).
bool OwnedByProtocol(std::string_view key) {
  return key == "model" || key == "prompt" || key == "stream" || key == "n";
}

// `v` with the keys of every object sorted, so that equal parameters
// serialize equally whatever order the client wrote them in.
json::value Canonical(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    std::vector<const json::key_value_pair*> fields;
    fields.reserve(o->size());
    for (const json::key_value_pair& kv : *o) fields.push_back(&kv);
    std::sort(fields.begin(), fields.end(),
              [](const auto* a, const auto* b) { return a->key() < b->key(); });
    json::object out;
    out.reserve(fields.size());
    for (const json::key_value_pair* kv : fields) out.emplace(kv->key(), Canonical(kv->value()));
    return out;
  }
  if (const json::array* a = v.if_array()) {
    json::array out;
    out.reserve(a->size());
    for (const json::value& x : *a) out.push_back(Canonical(x));
    return out;
  }
  return v;
}

// The item's whole parameters object (ItemParametersJson()), parsed.
json::object ItemParameters(const InferenceRequest& r) {
  boost::system::error_code ec;
  json::value v = json::parse(ItemParametersJson(r), ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

// Equal for items that may share a completions call. Items without extra
// parameters (the common case) get a cheap key; the others the canonical
// JSON of their parameters. The two kinds never compare equal, and need not:
// an item with extra parameters never has the same parameters as one
// without.
// (Built by appending: GCC 12 at -O3 reports a false -Werror=restrict for
// "literal" + std::string, GCC bug 105329.)
std::string GroupKey(const InferenceRequest& r) {
  std::string key;
  if (!r.params.json.empty()) {
    key = 'j';
    key += json::serialize(Canonical(ItemParameters(r)));
    return key;
  }
  key = 't';
  key += std::to_string(r.params.max_tokens);
  if (r.params.temperature) {
    key += '/';
    key += json::serialize(json::value(*r.params.temperature));
  }
  return key;
}

class OpenAiProtocol final : public BatchProtocol {
 public:
  explicit OpenAiProtocol(const ProtocolOptions& options)
      : embeddings_(options.kind == ProtocolKind::kOpenAiEmbeddings),
        model_(options.model),
        target_(options.base_path + (embeddings_ ? "/v1/embeddings" : "/v1/completions")) {}

  std::vector<std::vector<size_t>> Groups(const std::vector<RequestPtr>& batch) const override {
    if (embeddings_) return BatchProtocol::Groups(batch);
    std::vector<std::vector<size_t>> groups;
    std::unordered_map<std::string, size_t> group_of;  // key -> index into groups
    for (size_t i = 0; i < batch.size(); ++i) {
      auto [it, added] = group_of.try_emplace(GroupKey(*batch[i]), groups.size());
      if (added) groups.emplace_back();
      groups[it->second].push_back(i);
    }
    return groups;
  }

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
    // One group: every item has these parameters (see Groups()).
    for (json::key_value_pair& kv : ItemParameters(*batch.front())) {
      if (!OwnedByProtocol(kv.key())) body[kv.key()] = std::move(kv.value());
    }
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
