// Small text helpers for the parsers of command-line and config values.
// Pure functions; thread-safe.
#pragma once

#include <string_view>
#include <vector>

namespace sluice {

// The pieces of `s` between `sep`s, empty pieces included ("a,,b" -> "a",
// "", "b"; "" -> ""). The views point into `s`.
std::vector<std::string_view> SplitView(std::string_view s, char sep);

}  // namespace sluice
