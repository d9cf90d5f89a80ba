// The generic JSON batch protocol (see batch_protocol.h).

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"
#include "common/utf8.h"

namespace sluice::http_backend::protocol_internal {
namespace {

namespace json = boost::json;

// Items' error messages are the model's answer for that item and are shown to
// clients: keep them valid UTF-8 and at most 500 bytes.
std::string ItemErrorMessage(const json::value& e) {
  std::string message;
  if (e.is_string()) message = std::string(e.as_string());
  if (const json::object* o = e.if_object()) {
    const json::value* m = o->if_contains("message");
    if (m && m->is_string()) message = std::string(m->as_string());
  }
  if (message.empty()) message = "item failed";
  message = SanitizeUtf8(message, 500);
  return "inference API failed this item: " + message;
}

class GenericProtocol final : public BatchProtocol {
 public:
  explicit GenericProtocol(const ProtocolOptions& options)
      : model_(options.model),
        target_(options.base_path.empty() ? "/v1/batch" : options.base_path) {}

  EncodedBatch Encode(const std::vector<RequestPtr>& batch) const override {
    std::string body = "{\"model\":" + json::serialize(json::string(model_)) + ",\"inputs\":[";
    for (size_t i = 0; i < batch.size(); ++i) {
      if (i > 0) body.push_back(',');
      body += json::serialize(json::string(batch[i]->input));
    }
    body += "],\"parameters\":[";
    for (size_t i = 0; i < batch.size(); ++i) {
      if (i > 0) body.push_back(',');
      body += ItemParametersJson(*batch[i]);
    }
    body += "]}";
    return {target_, std::move(body)};
  }

  BatchResult Decode(int http_status, std::string_view body,
                     const std::vector<RequestPtr>& batch) const override {
    BatchResult result;
    json::value v = ParseReplyObject(http_status, body, "http batch", &result.status);
    if (!result.status.ok()) return result;
    const json::object* root = &v.as_object();
    const json::value* outputs = root->if_contains("outputs");
    if (!outputs || !outputs->is_array()) return Fail("\"outputs\" must be an array");
    const json::array& items = outputs->as_array();
    if (items.size() != batch.size()) {
      return Fail("expected " + std::to_string(batch.size()) + " outputs, got " +
                  std::to_string(items.size()));
    }
    if (const json::value* mv = root->if_contains("model_version"); mv && mv->is_string()) {
      result.model_version = std::string(mv->as_string());
    }
    result.items.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string at = "outputs[" + std::to_string(i) + "]";
      const json::object* item = items[i].if_object();
      if (!item) return Fail(at + " must be an object");
      ItemResult r;
      if (const json::value* e = item->if_contains("error"); e && !e->is_null()) {
        r.status = BackendError(ItemErrorMessage(*e));
        result.items.push_back(std::move(r));
        continue;
      }
      const json::value* out = item->if_contains("output");
      if (!out || !out->is_string()) return Fail(at + ".output must be a string");
      r.output = std::string(out->as_string());
      r.tokens_used = EstimateTokens(batch[i]->input) + EstimateTokens(r.output);
      if (const json::value* t = item->if_contains("tokens_used")) {
        const int64_t* n = t->if_int64();
        const uint64_t* u = t->if_uint64();
        if (n && *n >= 0 && *n <= UINT32_MAX) {
          r.tokens_used = static_cast<uint32_t>(*n);
        } else if (u && *u <= UINT32_MAX) {
          r.tokens_used = static_cast<uint32_t>(*u);
        } else {
          return Fail(at + ".tokens_used must be a non-negative integer");
        }
      }
      result.items.push_back(std::move(r));
    }
    return result;
  }

 private:
  static BatchResult Fail(const std::string& detail) {
    BatchResult r;
    r.status = Malformed("http batch", detail);
    return r;
  }

  const std::string model_;
  const std::string target_;
};

}  // namespace

std::unique_ptr<BatchProtocol> MakeGenericProtocol(const ProtocolOptions& options) {
  return std::make_unique<GenericProtocol>(options);
}

}  // namespace sluice::http_backend::protocol_internal
