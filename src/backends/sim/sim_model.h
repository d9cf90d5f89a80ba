// The simulated model: what the embedded accelerator "computes".
//
// Deterministic: the output depends only on (model, input, max_tokens), so
// tests can check that every response went to the right caller by calling
// SimulateCompletion() themselves. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sim {

struct SimCompletion {
  std::string output;        // 1..max_tokens pseudo-words derived from the input
  uint32_t tokens_used = 0;  // InputTokens(input) + number of output words
};

// ceil(bytes / 4), at least 1: the usual rough token estimate.
uint32_t InputTokens(std::string_view input);

// REQUIRES: max_tokens >= 1.
SimCompletion SimulateCompletion(std::string_view model, std::string_view input, int max_tokens);

// Deterministic unit-length vector of `dims` numbers (6 decimals) for
// (model, input); dims < 1 counts as 1.
std::vector<double> SimulateEmbedding(std::string_view model, std::string_view input, int dims);

// `vector` as a JSON array ("[0.25,-0.5]"): an embedding model's output.
std::string EmbeddingJson(const std::vector<double>& vector);

}  // namespace sluice::sim
