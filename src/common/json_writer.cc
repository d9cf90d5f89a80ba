#include "common/json_writer.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "common/utf8.h"

namespace sluice {

namespace {
// Whether any of the 8 bytes of `w` needs escaping in a JSON string: a
// control character (< 0x20), '"' or '\\'. Exact (no false positives).
bool WordNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return (below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'))) != 0;
}
}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the pending unescaped run
  for (size_t i = 0; i < s.size(); ++i) {
    // Eight bytes at a time while none needs escaping (most text).
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (WordNeedsEscape(w)) break;
      i += 8;
    }
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void AppendJsonText(std::string& out, std::string_view text) {
  if (IsValidUtf8(text)) return AppendJsonString(out, text);
  AppendJsonString(out, SanitizeUtf8(text));
}

void JsonObjectWriter::Name(std::string_view name) {
  if (!first_) out_.push_back(',');
  first_ = false;
  out_.push_back('"');
  out_.append(name);
  out_.append("\":");
}

JsonObjectWriter& JsonObjectWriter::String(std::string_view name, std::string_view text) {
  Name(name);
  AppendJsonText(out_, text);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Int(std::string_view name, int64_t value) {
  Name(name);
  fmt::format_to(std::back_inserter(out_), "{}", value);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Uint(std::string_view name, uint64_t value) {
  Name(name);
  fmt::format_to(std::back_inserter(out_), "{}", value);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Double(std::string_view name, double value) {
  Name(name);
  if (std::isfinite(value)) {
    fmt::format_to(std::back_inserter(out_), "{}", value);
  } else {
    out_.append("null");
  }
  return *this;
}

}  // namespace sluice
