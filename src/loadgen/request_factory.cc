#include "loadgen/request_factory.h"

#include <algorithm>
#include <cmath>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace sluice::loadgen {
namespace {

constexpr size_t kIdChars = 16;
constexpr size_t kFillerWindow = 4096;  // inputs start at varying offsets in the filler

std::string MakeFiller(size_t size, uint64_t seed) {
  static constexpr const char* kWords[] = {
      "the",  "model", "batch", "signal", "gpu",   "token",   "queue",  "what",
      "is",   "of",    "a",     "fast",   "river", "capital", "france", "latency",
      "tier", "paid",  "free",  "answer", "cloud", "vector",  "quick",  "brown"};
  std::mt19937_64 rng(seed);
  std::string out;
  out.reserve(size + 16);
  while (out.size() < size) {
    out += kWords[rng() % std::size(kWords)];
    out += ' ';
  }
  out.resize(size);
  return out;
}

}  // namespace

uint32_t RequestFactory::Picker::Pick(double u) const {
  const double x = u * cumulative.back();
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), x);
  return static_cast<uint32_t>(std::min<size_t>(it - cumulative.begin(), cumulative.size() - 1));
}

RequestFactory::RequestFactory(const WorkloadSpec& spec, const Options& options)
    : options_(options), input_bytes_(spec.input_bytes), rng_(options.seed) {
  double sum = 0;
  for (const TierMix& t : spec.tiers) {
    tiers_.cumulative.push_back(sum += t.weight);
    std::vector<std::string> lines;
    for (const std::string& k : t.keys) lines.push_back("Authorization: Bearer " + k + "\r\n");
    auth_lines_.push_back(std::move(lines));
  }
  next_key_.assign(spec.tiers.size(), 0);
  sum = 0;
  for (const WeightedName& m : spec.models) {
    models_.cumulative.push_back(sum += m.weight);
    const std::string model = "{\"model\":" + boost::json::serialize(boost::json::string(m.name));
    // A chat's text is its one user message's; it is always streamed.
    body_prefixes_.push_back(spec.api != Api::kOpenAiChat
                                 ? model + ",\"input\":\""
                                 : model + ",\"stream\":true" +
                                       (spec.max_tokens > 0
                                            ? ",\"max_tokens\":" + std::to_string(spec.max_tokens)
                                            : "") +
                                       ",\"messages\":[{\"role\":\"user\",\"content\":\"");
  }
  if (spec.async) prefer_line_ = "Prefer: respond-async\r\n";
  switch (spec.api) {
    case Api::kInference:
      body_suffix_ =
          spec.max_tokens > 0
              ? "\",\"parameters\":{\"max_tokens\":" + std::to_string(spec.max_tokens) + "}}"
              : "\"}";
      break;
    case Api::kOpenAiEmbeddings:
      body_suffix_ = "\"}";
      break;
    case Api::kOpenAiChat:
      body_suffix_ = "\"}]}";
      break;
  }
  // A pooled input's text must not depend on which factory sends it.
  const uint64_t filler_seed = spec.inputs.pool > 0 ? 0x5eed : options.seed ^ 0x5eed;
  filler_ = MakeFiller(spec.input_bytes.max_bytes + kFillerWindow, filler_seed);
  sum = 0;
  inputs_.cumulative.reserve(spec.inputs.pool);  // 8 bytes per pooled input, per load thread
  for (uint32_t k = 1; k <= spec.inputs.pool; ++k) {
    inputs_.cumulative.push_back(sum += std::pow(static_cast<double>(k), -spec.inputs.zipf_s));
  }
}

double RequestFactory::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

PlannedRequest RequestFactory::Plan() {
  PlannedRequest r;
  r.tier = tiers_.Pick(Uniform());
  r.model = models_.Pick(Uniform());
  r.key = next_key_[r.tier];
  next_key_[r.tier] = (next_key_[r.tier] + 1) % auth_lines_[r.tier].size();
  const uint32_t span = input_bytes_.max_bytes - input_bytes_.min_bytes;
  uint64_t size_draw = 0;
  if (!inputs_.cumulative.empty()) {
    r.pool_index = inputs_.Pick(Uniform());
    size_draw = (uint64_t{*r.pool_index} + 1) * 0x9E3779B97F4A7C15ull;  // the index's own size
  } else if (span > 0) {
    size_draw = rng_();  // drawn only then, as before pools: a seed gives the same runs
  }
  r.input_bytes =
      input_bytes_.min_bytes + (span == 0 ? 0 : static_cast<uint32_t>(size_draw % (span + 1)));
  r.seq = seq_++;
  return r;
}

void RequestFactory::RenderBody(const PlannedRequest& r, std::string* out) const {
  out->clear();
  out->append(body_prefixes_[r.model]);
  static constexpr char kHex[] = "0123456789abcdef";
  if (r.pool_index) {
    const uint64_t index = *r.pool_index;
    out->push_back('p');
    for (int shift = 56; shift >= 0; shift -= 4) out->push_back(kHex[(index >> shift) & 0xf]);
  } else {
    const uint64_t id = (uint64_t{options_.stream_id} << 48) | (r.seq & ((uint64_t{1} << 48) - 1));
    for (int shift = 60; shift >= 0; shift -= 4) out->push_back(kHex[(id >> shift) & 0xf]);
  }
  // A short separator, then words from an offset in the filler that depends
  // on the sequence number, or on the pooled input's index.
  const uint64_t offset_of = r.pool_index ? *r.pool_index : r.seq;
  const size_t rest = r.input_bytes - kIdChars;
  out->push_back(' ');
  out->append(filler_, (offset_of * 7919) % kFillerWindow, rest - 1);
  out->append(body_suffix_);
}

void RequestFactory::Render(const PlannedRequest& r, std::string* out) const {
  std::string& body = body_scratch_;
  RenderBody(r, &body);
  out->clear();
  out->append("POST ").append(options_.path).append(" HTTP/1.1\r\nHost: ");
  out->append(options_.host_header).append("\r\n");
  out->append(auth_lines_[r.tier][r.key]);
  out->append(prefer_line_);
  out->append("Content-Type: application/json\r\nContent-Length: ");
  out->append(std::to_string(body.size())).append("\r\n\r\n");
  out->append(body);
}

}  // namespace sluice::loadgen
