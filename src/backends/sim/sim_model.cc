#include "backends/sim/sim_model.h"

#include <array>
#include <cmath>

#include <fmt/format.h>

#include "core/tokens.h"

namespace sluice::sim {

namespace {
uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::array<std::string_view, 16> kWords = {
    "batch", "sluice", "tensor", "queue", "token",  "deadline", "kernel", "stream",
    "gpu",   "model",  "lane",   "flow",  "signal", "vector",   "cache",  "tier"};
}  // namespace

uint32_t InputTokens(std::string_view input) {
  return static_cast<uint32_t>(EstimateInputTokens(input));
}

SimCompletion SimulateCompletion(std::string_view model, std::string_view input, int max_tokens) {
  uint64_t h = Fnv1a(Fnv1a(0xcbf29ce484222325ULL, model), "\x1f");
  h = Fnv1a(h, input);
  uint64_t n_words = 1 + Mix(h) % static_cast<uint64_t>(max_tokens < 1 ? 1 : max_tokens);
  if (n_words > 64) n_words = 64 + Mix(h + 1) % 8;  // keep bodies small for huge max_tokens
  if (n_words > static_cast<uint64_t>(max_tokens)) n_words = static_cast<uint64_t>(max_tokens);
  SimCompletion c;
  c.output.reserve(n_words * 8 + 20);
  char tag[17];
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) tag[i] = kHex[(h >> (60 - 4 * i)) & 0xf];
  tag[16] = 0;
  c.output.append("[").append(tag).append("]");
  for (uint64_t i = 0; i < n_words; ++i) {
    c.output.push_back(' ');
    c.output.append(kWords[Mix(h + 0x9e3779b97f4a7c15ULL * (i + 1)) % kWords.size()]);
  }
  c.tokens_used = InputTokens(input) + static_cast<uint32_t>(n_words);
  return c;
}

std::vector<double> SimulateEmbedding(std::string_view model, std::string_view input, int dims) {
  uint64_t h = Fnv1a(Fnv1a(Fnv1a(0xcbf29ce484222325ULL, model), "\x1f"), input);
  std::vector<double> v(static_cast<size_t>(dims < 1 ? 1 : dims));
  double norm = 0;
  for (double& x : v) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    x = static_cast<double>(h % 2001) / 1000.0 - 1.0;
    norm += x * x;
  }
  norm = std::sqrt(norm);
  for (double& x : v) x = norm > 0 ? std::round(x / norm * 1e6) / 1e6 : 0;
  return v;
}

std::string EmbeddingJson(const std::vector<double>& vector) {
  std::string out = "[";
  for (size_t i = 0; i < vector.size(); ++i) {
    if (i > 0) out.push_back(',');
    fmt::format_to(std::back_inserter(out), "{}", vector[i]);
  }
  out.push_back(']');
  return out;
}

}  // namespace sluice::sim
