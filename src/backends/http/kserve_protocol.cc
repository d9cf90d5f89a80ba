// KServe v2 / Triton HTTP inference protocol with a BYTES tensor of shape
// [n, 1] (see batch_protocol.h).

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"

namespace sluice::http_backend::protocol_internal {
namespace {

namespace json = boost::json;

// True when `v` is the shape [n, 1].
bool IsColumnShape(const json::value* v, size_t n) {
  if (!v || !v->is_array() || v->as_array().size() != 2) return false;
  const json::array& s = v->as_array();
  const int64_t* rows = s[0].if_int64();
  const int64_t* cols = s[1].if_int64();
  return rows && cols && *rows == static_cast<int64_t>(n) && *cols == 1;
}

// A row of a [n, 1] tensor: flat (`x`) or nested (`[x]`); both are valid v2.
const json::value& Cell(const json::value& row) {
  if (const json::array* a = row.if_array(); a && a->size() == 1) return a->front();
  return row;
}

class KServeProtocol final : public BatchProtocol {
 public:
  explicit KServeProtocol(const ProtocolOptions& options)
      : input_name_(options.kserve_input_name),
        output_name_(options.kserve_output_name),
        target_(options.base_path + "/v2/models/" + options.model + "/infer") {}

  EncodedBatch Encode(const std::vector<RequestPtr>& batch) const override {
    const int64_t n = static_cast<int64_t>(batch.size());
    json::array text, max_tokens;
    for (const RequestPtr& r : batch) {
      text.emplace_back(r->input);
      max_tokens.emplace_back(r->params.max_tokens);
    }
    json::array inputs;
    inputs.push_back(json::object{{"name", input_name_},
                                  {"shape", json::array{n, 1}},
                                  {"datatype", "BYTES"},
                                  {"data", std::move(text)}});
    inputs.push_back(json::object{{"name", "max_tokens"},
                                  {"shape", json::array{n, 1}},
                                  {"datatype", "INT32"},
                                  {"data", std::move(max_tokens)}});
    json::object body{{"inputs", std::move(inputs)},
                      {"outputs", json::array{json::object{{"name", output_name_}}}}};
    return {target_, json::serialize(body)};
  }

  BatchResult Decode(int http_status, std::string_view body,
                     const std::vector<RequestPtr>& batch) const override {
    BatchResult result;
    json::value v = ParseReplyObject(http_status, body, "kserve", &result.status);
    if (!result.status.ok()) return result;
    const json::object* root = &v.as_object();
    const json::value* outputs = root->if_contains("outputs");
    if (!outputs || !outputs->is_array()) return Fail("\"outputs\" must be an array");
    const json::array* text = nullptr;
    const json::array* tokens = nullptr;
    for (const json::value& o : outputs->as_array()) {
      const json::object* t = o.if_object();
      const json::value* name = t ? t->if_contains("name") : nullptr;
      if (!name || !name->is_string()) return Fail("every output tensor needs a \"name\"");
      const bool is_text = name->as_string() == output_name_;
      if (!is_text && name->as_string() != "tokens_used") continue;
      const json::value* data = t->if_contains("data");
      if (!data || !data->is_array())
        return Fail("tensor \"" + std::string(name->as_string()) + "\" needs a \"data\" array");
      if (!IsColumnShape(t->if_contains("shape"), batch.size())) {
        return Fail("tensor \"" + std::string(name->as_string()) + "\" must have shape [" +
                    std::to_string(batch.size()) + ", 1]");
      }
      if (data->as_array().size() != batch.size()) {
        return Fail("tensor \"" + std::string(name->as_string()) + "\" has " +
                    std::to_string(data->as_array().size()) + " rows, expected " +
                    std::to_string(batch.size()));
      }
      (is_text ? text : tokens) = &data->as_array();
    }
    if (!text) return Fail("no output tensor \"" + output_name_ + "\"");
    if (const json::value* mv = root->if_contains("model_version"); mv && mv->is_string()) {
      result.model_version = std::string(mv->as_string());
    }
    result.items.resize(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      const json::value& cell = Cell((*text)[i]);
      if (!cell.is_string()) {
        return Fail("\"" + output_name_ + "\" row " + std::to_string(i) + " must be a string");
      }
      ItemResult& r = result.items[i];
      r.output = std::string(cell.as_string());
      r.tokens_used = EstimateTokens(batch[i]->input) + EstimateTokens(r.output);
      if (tokens) {
        const int64_t* t = Cell((*tokens)[i]).if_int64();
        if (!t || *t < 0 || *t > UINT32_MAX) {
          return Fail("\"tokens_used\" row " + std::to_string(i) + " must be an integer >= 0");
        }
        r.tokens_used = static_cast<uint32_t>(*t);
      }
    }
    return result;
  }

 private:
  static BatchResult Fail(const std::string& detail) {
    BatchResult r;
    r.status = Malformed("kserve", detail);
    return r;
  }

  const std::string input_name_;
  const std::string output_name_;
  const std::string target_;
};

}  // namespace

std::unique_ptr<BatchProtocol> MakeKServeProtocol(const ProtocolOptions& options) {
  return std::make_unique<KServeProtocol>(options);
}

}  // namespace sluice::http_backend::protocol_internal
