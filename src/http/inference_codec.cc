#include "http/inference_codec.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <vector>

#include "common/json_writer.h"

namespace sluice::http {

namespace json = boost::json;

namespace {
const char* KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

Status WrongType(const char* field, const char* expected, const json::value& got) {
  return InvalidArgument(std::string(field) + ": must be " + expected + ", got " + KindName(got));
}

// Appends `v` as JSON with every object's members in key order, so that
// two spellings of one object are one text (the result cache keys on it).
void AppendCanonical(std::string& out, const json::value& v) {
  if (v.is_object()) {
    std::vector<const json::key_value_pair*> members;
    for (const json::key_value_pair& kv : v.as_object()) members.push_back(&kv);
    std::sort(members.begin(), members.end(),
              [](const json::key_value_pair* a, const json::key_value_pair* b) {
                return a->key() < b->key();
              });
    out += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, members[i]->key());
      out += ':';
      AppendCanonical(out, members[i]->value());
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    const json::array& a = v.as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (i > 0) out += ',';
      AppendCanonical(out, a[i]);
    }
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

Status DecodeParameters(const json::value& v, InferenceParams* params) {
  if (!v.is_object()) return WrongType("parameters", "an object", v);
  const json::object& obj = v.as_object();
  if (const json::value* mt = obj.if_contains("max_tokens")) {
    int64_t n = 0;
    if (mt->is_int64()) {
      n = mt->as_int64();
    } else if (mt->is_uint64()) {
      n = static_cast<int64_t>(std::min<uint64_t>(mt->as_uint64(), INT64_MAX));
    } else if (mt->is_double() && std::floor(mt->as_double()) == mt->as_double() &&
               std::abs(mt->as_double()) < 1e15) {
      n = static_cast<int64_t>(mt->as_double());
    } else {
      return WrongType("parameters.max_tokens", "an integer", *mt);
    }
    if (n < 1 || n > 1'000'000) {
      return InvalidArgument("parameters.max_tokens: must be a positive integer, got " +
                             std::to_string(n));
    }
    params->max_tokens = static_cast<int>(n);
  }
  if (const json::value* t = obj.if_contains("temperature")) {
    if (!t->is_number()) return WrongType("parameters.temperature", "a number", *t);
    double temp = t->to_number<double>();
    if (!(temp >= 0.0 && temp <= 2.0)) {
      return InvalidArgument("parameters.temperature: must be between 0 and 2");
    }
    params->temperature = temp;
  }
  // Backends get the typed fields; only other parameters are kept as JSON
  // for them (members in key order), so the common request serializes
  // nothing.
  bool others = false;
  for (const auto& kv : obj) {
    others = others || (kv.key() != "max_tokens" && kv.key() != "temperature");
  }
  params->json.clear();
  if (others) AppendCanonical(params->json, v);
  return Status::Ok();
}
}  // namespace

Status DecodeInferenceRequest(std::string_view body, DecodedInference* out) {
  boost::system::error_code ec;
  unsigned char scratch[4096];
  json::monotonic_resource mr(scratch, sizeof(scratch));  // heap only past 4 KiB
  json::parse_options opts;
  opts.max_depth = 32;
  json::value root = json::parse(body, ec, &mr, opts);
  if (ec) return InvalidArgument("body is not valid JSON: " + ec.message());
  if (!root.is_object()) return InvalidArgument("body: must be a JSON object");
  const json::object& obj = root.as_object();

  const json::value* model = obj.if_contains("model");
  if (model == nullptr) return InvalidArgument("model: required field is missing");
  if (!model->is_string()) return WrongType("model", "a string", *model);
  if (model->as_string().empty()) return InvalidArgument("model: must not be empty");
  out->model.assign(model->as_string().data(), model->as_string().size());

  const json::value* input = obj.if_contains("input");
  if (input == nullptr) return InvalidArgument("input: required field is missing");
  if (!input->is_string()) return WrongType("input", "a string", *input);
  if (input->as_string().empty()) return InvalidArgument("input: must not be empty");
  out->input.assign(input->as_string().data(), input->as_string().size());

  out->async = false;
  if (const json::value* a = obj.if_contains("async"); a != nullptr && !a->is_null()) {
    if (!a->is_bool()) return WrongType("async", "true or false", *a);
    out->async = a->as_bool();
  }
  out->params = InferenceParams{};
  out->params.max_tokens = 0;
  if (const json::value* p = obj.if_contains("parameters"); p != nullptr && !p->is_null()) {
    return DecodeParameters(*p, &out->params);
  }
  return Status::Ok();
}

std::string EncodeInferenceResponse(const std::string& request_id, const InferenceOutcome& outcome,
                                    int64_t latency_ms) {
  // Built directly: this runs for every response, and a json::object would
  // allocate per member.
  std::string out;
  out.reserve(112 + request_id.size() + outcome.output.size() + outcome.model_version.size());
  out.append(R"({"request_id":)");
  AppendJsonString(out, request_id);
  out.append(R"(,"output":)");
  AppendJsonString(out, outcome.output);
  char num[24];
  out.append(R"(,"metadata":{"tokens_used":)");
  out.append(num, std::to_chars(num, num + sizeof(num), outcome.tokens_used).ptr);
  out.append(R"(,"latency_ms":)");
  out.append(num, std::to_chars(num, num + sizeof(num), latency_ms).ptr);
  out.append(R"(,"model_version":)");
  AppendJsonString(out, outcome.model_version);
  if (outcome.cached) out.append(R"(,"cached":true)");
  if (outcome.collapsed) out.append(R"(,"collapsed":true)");
  out.append("}}");
  return out;
}

std::string EncodeError(const Status& status, const std::string& request_id, const char* code,
                        const char* reason) {
  json::object err;
  err["code"] = code ? code : ErrorCodeName(status.code());
  err["message"] = status.message();
  if (reason != nullptr) err["reason"] = reason;
  if (request_id.empty()) {
    err["request_id"] = nullptr;
  } else {
    err["request_id"] = request_id;
  }
  json::object o;
  o["error"] = std::move(err);
  return json::serialize(o);
}

}  // namespace sluice::http
