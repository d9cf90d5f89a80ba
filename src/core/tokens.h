// Token estimates for rate limiting before a model has seen the input.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

// ceil(bytes / 4), at least 1: the usual rough estimate of input tokens.
inline int64_t EstimateInputTokens(std::string_view input) {
  return input.empty() ? 1 : static_cast<int64_t>((input.size() + 3) / 4);
}

}  // namespace sluice
