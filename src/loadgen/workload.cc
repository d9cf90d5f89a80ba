#include "loadgen/workload.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <system_error>

#include "common/text.h"

namespace sluice::loadgen {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// The whole of `s` as a finite double, or false.
bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('`');
  out.append(s);
  out.push_back('`');
  return out;
}

// Printable ASCII without spaces: safe inside an HTTP header line.
bool IsHeaderToken(std::string_view s) {
  for (char c : s) {
    if (c <= ' ' || c > '~') return false;
  }
  return !s.empty();
}

}  // namespace

Result<std::vector<WeightedName>> ParseWeightedList(std::string_view text, bool weight_optional,
                                                    std::string_view what) {
  const std::string flag(what);
  if (Trim(text).empty()) return InvalidArgument(flag + ": empty list");
  std::vector<WeightedName> out;
  std::set<std::string, std::less<>> seen;
  double total = 0;
  for (std::string_view item : SplitView(text, ',')) {
    item = Trim(item);
    const size_t eq = item.find('=');
    WeightedName w;
    w.name = std::string(Trim(item.substr(0, eq)));
    if (w.name.empty()) return InvalidArgument(flag + ": empty name in " + Quote(text));
    if (eq == std::string_view::npos) {
      if (!weight_optional) {
        return InvalidArgument(flag + ": expected NAME=WEIGHT, got " + Quote(item));
      }
    } else if (!ParseDouble(Trim(item.substr(eq + 1)), &w.weight) || w.weight < 0) {
      return InvalidArgument(flag + ": weight of " + Quote(w.name) +
                             " must be a non-negative number, got " +
                             Quote(Trim(item.substr(eq + 1))));
    }
    if (!seen.insert(w.name).second) {
      return InvalidArgument(flag + ": " + Quote(w.name) + " appears twice");
    }
    total += w.weight;
    out.push_back(std::move(w));
  }
  if (!(total > 0)) return InvalidArgument(flag + ": at least one weight must be positive");
  return out;
}

Result<std::vector<TierKeys>> ParseKeysText(std::string_view text, std::string_view source) {
  std::vector<TierKeys> out;
  int line_no = 0;
  for (std::string_view line : SplitView(text, '\n')) {
    ++line_no;
    const std::string where = std::string(source) + ":" + std::to_string(line_no) + ": ";
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    std::vector<std::string_view> fields;
    for (std::string_view f : SplitView(Trim(line), ' ')) {
      for (std::string_view g : SplitView(f, '\t')) {
        if (!g.empty()) fields.push_back(g);
      }
    }
    if (fields.empty()) continue;
    if (fields.size() != 2) {
      return InvalidArgument(where + "expected `TIER KEY`, got " + std::to_string(fields.size()) +
                             (fields.size() == 1 ? " field" : " fields"));
    }
    if (!IsHeaderToken(fields[1])) {
      return InvalidArgument(where + "the key contains characters not allowed in a header");
    }
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const TierKeys& t) { return t.tier == fields[0]; });
    if (it == out.end()) it = out.insert(out.end(), TierKeys{std::string(fields[0]), {}});
    it->keys.emplace_back(fields[1]);
  }
  if (out.empty())
    return InvalidArgument(std::string(source) + ": no keys (expected `TIER KEY` lines)");
  return out;
}

std::vector<TierKeys> DemoKeys() {
  return {{"free", {"sk-free-demo-0001"}},
          {"paid", {"sk-paid-demo-0001"}},
          {"enterprise", {"sk-enterprise-demo-0001"}}};
}

Result<ByteRange> ParseByteRange(std::string_view text) {
  const std::string_view t = Trim(text);
  const size_t dash = t.find('-');
  uint64_t lo = 0, hi = 0;
  const bool ok = dash == std::string_view::npos ? ParseUint(t, &lo) && (hi = lo, true)
                                                 : ParseUint(Trim(t.substr(0, dash)), &lo) &&
                                                       ParseUint(Trim(t.substr(dash + 1)), &hi);
  if (!ok) return InvalidArgument("--input-bytes: expected N or N-M bytes, got " + Quote(text));
  if (lo > hi) return InvalidArgument("--input-bytes: range " + Quote(text) + " is reversed");
  if (lo < kMinInputBytes || hi > kMaxInputBytes) {
    return InvalidArgument("--input-bytes: sizes must be between " +
                           std::to_string(kMinInputBytes) + " and " +
                           std::to_string(kMaxInputBytes) + " (every input starts with a " +
                           "16-character unique id), got " + Quote(text));
  }
  return ByteRange{static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)};
}

Result<InputDistribution> ParseInputDistribution(std::string_view text, uint32_t pool) {
  const std::string_view t = Trim(text);
  if (t == "unique") return InputDistribution{};
  constexpr std::string_view kZipf = "zipf:";
  double s = -1;
  if (t.substr(0, kZipf.size()) == kZipf) {
    const std::string_view exponent = Trim(t.substr(kZipf.size()));
    auto [end, ec] = std::from_chars(exponent.data(), exponent.data() + exponent.size(), s);
    if (ec != std::errc() || end != exponent.data() + exponent.size()) s = -1;
  }
  if (!(s >= 0 && s <= 100)) {
    return InvalidArgument("--input-dist: expected unique or zipf:S with 0 <= S <= 100, got " +
                           Quote(text));
  }
  if (pool < 1 || pool > kMaxInputPool) {
    return InvalidArgument("--input-pool: must be between 1 and " + std::to_string(kMaxInputPool) +
                           ", got " + std::to_string(pool));
  }
  return InputDistribution{pool, s};
}

Result<int64_t> ParseDurationUs(std::string_view text, std::string_view what) {
  const std::string_view t = Trim(text);
  size_t unit_at = t.size();
  while (unit_at > 0 && std::isalpha(static_cast<unsigned char>(t[unit_at - 1]))) --unit_at;
  const std::string_view unit = t.substr(unit_at);
  double scale_us = 0;
  if (unit.empty() || unit == "s") {
    scale_us = 1e6;
  } else if (unit == "ms") {
    scale_us = 1e3;
  } else if (unit == "us") {
    scale_us = 1;
  } else if (unit == "m" || unit == "min") {
    scale_us = 60e6;
  }
  double value = 0;
  if (scale_us == 0 || !ParseDouble(Trim(t.substr(0, unit_at)), &value) || value < 0 ||
      value * scale_us > 1e15) {
    return InvalidArgument(std::string(what) +
                           ": expected a duration such as 10s, 500ms or 2m, got " + Quote(text));
  }
  return static_cast<int64_t>(std::llround(value * scale_us));
}

Result<std::vector<double>> ParseRateList(std::string_view text, std::string_view what) {
  std::vector<double> out;
  for (std::string_view item : SplitView(text, ',')) {
    double rate = 0;
    if (!ParseDouble(Trim(item), &rate) || !(rate > 0)) {
      return InvalidArgument(std::string(what) +
                             ": expected positive requests per second separated by commas, got " +
                             Quote(Trim(item)));
    }
    out.push_back(rate);
  }
  return out;
}

Result<std::vector<TierMix>> BuildTierMix(const std::vector<WeightedName>& mix,
                                          const std::vector<TierKeys>& keys) {
  std::vector<TierMix> out;
  for (const WeightedName& w : mix) {
    if (w.weight <= 0) continue;
    auto it =
        std::find_if(keys.begin(), keys.end(), [&](const TierKeys& k) { return k.tier == w.name; });
    if (it == keys.end() || it->keys.empty()) {
      std::string known;
      for (const TierKeys& k : keys) known += (known.empty() ? "" : ", ") + k.tier;
      return InvalidArgument("--mix names tier " + Quote(w.name) +
                             " but there is no key for it (tiers with keys: " + known + ")");
    }
    out.push_back(TierMix{w.name, w.weight, it->keys});
  }
  if (out.empty()) return InvalidArgument("--mix: at least one weight must be positive");
  return out;
}

const char* ApiPath(Api api) {
  switch (api) {
    case Api::kOpenAiEmbeddings:
      return "/v1/embeddings";
    case Api::kOpenAiChat:
      return "/v1/chat/completions";
    case Api::kInference:
      break;
  }
  return "/v1/inference";
}

const char* ApiName(Api api) {
  switch (api) {
    case Api::kOpenAiEmbeddings:
      return "openai-embeddings";
    case Api::kOpenAiChat:
      return "openai-chat";
    case Api::kInference:
      break;
  }
  return "inference";
}

Result<Api> ParseApi(std::string_view name) {
  for (Api api : {Api::kInference, Api::kOpenAiEmbeddings, Api::kOpenAiChat}) {
    if (name == ApiName(api)) return api;
  }
  return InvalidArgument("--api: expected inference, openai-embeddings or openai-chat, got " +
                         Quote(std::string(name)));
}

Status ValidateWorkload(const WorkloadSpec& spec) {
  if (spec.tiers.empty()) return InvalidArgument("the workload needs at least one tier");
  if (spec.async && spec.api != Api::kInference) {
    return InvalidArgument("--async: only with --api inference");
  }
  for (const TierMix& t : spec.tiers) {
    if (!(t.weight > 0) || t.keys.empty()) {
      return InvalidArgument("tier " + Quote(t.tier) + " needs a positive weight and a key");
    }
    for (const std::string& k : t.keys) {
      if (!IsHeaderToken(k))
        return InvalidArgument("a key of tier " + Quote(t.tier) + " is not a valid header value");
    }
  }
  double model_total = 0;
  for (const WeightedName& m : spec.models) {
    if (m.name.empty() || m.weight < 0) return InvalidArgument("--model: bad model entry");
    model_total += m.weight;
  }
  if (!(model_total > 0)) return InvalidArgument("--model: at least one model is needed");
  if (spec.input_bytes.min_bytes < kMinInputBytes || spec.input_bytes.max_bytes > kMaxInputBytes ||
      spec.input_bytes.min_bytes > spec.input_bytes.max_bytes) {
    return InvalidArgument("--input-bytes: out of range");
  }
  if (spec.max_tokens < 0) return InvalidArgument("--max-tokens: must not be negative");
  if (spec.inputs.pool > kMaxInputPool || !(spec.inputs.zipf_s >= 0)) {
    return InvalidArgument("--input-dist: out of range");
  }
  return Status::Ok();
}

}  // namespace sluice::loadgen
