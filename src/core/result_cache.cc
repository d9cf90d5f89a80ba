#include "core/result_cache.h"

#include <charconv>

#include "common/crypto.h"

namespace sluice {
namespace {

// Appends `field` with its length in front, so that fields cannot run into
// each other ("ab" + "c" and "a" + "bc" differ).
void AppendField(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out.append(field);
}

}  // namespace

std::string ResultCacheKey(std::string_view model, std::string_view model_version,
                           std::string_view input, const InferenceParams& params) {
  std::string text;
  text.reserve(64 + model.size() + model_version.size() + input.size() + params.json.size());
  AppendField(text, model);
  AppendField(text, model_version);
  AppendField(text, input);
  AppendField(text, std::to_string(params.max_tokens));
  // Absent and present differ; a present one is written exactly (the
  // shortest text that reads back as the same double), with -0 as 0.
  std::string temperature;
  if (params.temperature) {
    const double t = *params.temperature == 0 ? 0.0 : *params.temperature;
    char buf[32];
    temperature.assign(buf, std::to_chars(buf, buf + sizeof(buf), t).ptr);
  }
  AppendField(text, temperature);
  AppendField(text, params.json);
  return ToHex(Sha256(text));
}

}  // namespace sluice
