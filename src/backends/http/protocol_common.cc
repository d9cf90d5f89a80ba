// Helpers shared by the three protocols, and the factory.

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"
#include "common/utf8.h"
#include "core/tokens.h"

namespace sluice::http_backend {

namespace json = boost::json;

Result<ProtocolKind> ProtocolKindFor(std::string_view backend_kind, std::string_view openai_api) {
  if (backend_kind == "http") return ProtocolKind::kGeneric;
  if (backend_kind == "kserve") return ProtocolKind::kKServe;
  if (backend_kind == "openai") {
    if (openai_api.empty() || openai_api == "completions") return ProtocolKind::kOpenAiCompletions;
    if (openai_api == "embeddings") return ProtocolKind::kOpenAiEmbeddings;
    return InvalidArgument("unknown OpenAI API `" + std::string(openai_api) +
                           "` (supported: completions, embeddings)");
  }
  return InvalidArgument("unknown HTTP backend kind `" + std::string(backend_kind) + "`");
}

const char* ProtocolName(ProtocolKind kind) {
  switch (kind) {
    case ProtocolKind::kGeneric:
      return "http";
    case ProtocolKind::kOpenAiCompletions:
    case ProtocolKind::kOpenAiEmbeddings:
      return "openai";
    case ProtocolKind::kKServe:
      return "kserve";
  }
  return "?";
}

Result<std::unique_ptr<BatchProtocol>> MakeBatchProtocol(const ProtocolOptions& options) {
  if (options.model.empty()) return InvalidArgument("batch protocol needs a model name");
  switch (options.kind) {
    case ProtocolKind::kGeneric:
      return protocol_internal::MakeGenericProtocol(options);
    case ProtocolKind::kOpenAiCompletions:
    case ProtocolKind::kOpenAiEmbeddings:
      return protocol_internal::MakeOpenAiProtocol(options);
    case ProtocolKind::kKServe:
      if (options.kserve_input_name.empty() || options.kserve_output_name.empty()) {
        return InvalidArgument("kserve tensor names must not be empty");
      }
      return protocol_internal::MakeKServeProtocol(options);
  }
  return InvalidArgument("unknown protocol kind");
}

namespace protocol_internal {

Status Malformed(std::string_view what, std::string_view detail) {
  return BackendError("malformed " + std::string(what) + " reply: " + std::string(detail));
}

Status HttpFailure(int http_status, std::string_view body) {
  std::string detail;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    const json::value* e = v.as_object().if_contains("error");
    if (e && e->is_string()) detail = std::string(e->as_string());
    if (e && e->is_object()) {  // OpenAI: {"error": {"message": ...}}
      const json::value* m = e->as_object().if_contains("message");
      if (m && m->is_string()) detail = std::string(m->as_string());
    }
  }
  // The backend controls these bytes: keep them valid UTF-8 and bounded.
  detail = detail.empty() ? SanitizeUtf8(body, 200) : SanitizeUtf8(detail, 500);
  return BackendError("inference API answered HTTP " + std::to_string(http_status) +
                      (detail.empty() ? std::string() : ": " + detail));
}

std::string ItemParametersJson(const InferenceRequest& request) {
  json::object params;
  if (!request.params.json.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(request.params.json, ec);
    if (!ec && v.is_object()) params = std::move(v.as_object());
  }
  params["max_tokens"] = request.params.max_tokens;
  if (request.params.temperature) params["temperature"] = *request.params.temperature;
  return json::serialize(params);
}

uint32_t EstimateTokens(std::string_view text) {
  return static_cast<uint32_t>(EstimateInputTokens(text));
}

json::value ParseReplyObject(int http_status, std::string_view body, std::string_view what,
                             Status* status) {
  if (http_status < 200 || http_status > 299) {
    *status = HttpFailure(http_status, body);
    return nullptr;
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    *status = Malformed(what, "invalid JSON (" + ec.message() + ")");
    return nullptr;
  }
  if (!v.is_object()) {
    *status = Malformed(what, "expected a JSON object");
    return nullptr;
  }
  return v;
}

}  // namespace protocol_internal
}  // namespace sluice::http_backend
