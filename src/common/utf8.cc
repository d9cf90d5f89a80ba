#include "common/utf8.h"

#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr uint64_t kHighBits = 0x8080808080808080ULL;      // of 8 bytes

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed sequence starting at text[i], or 0 when the bytes
// there do not start one. When 0, *invalid_len is the length of the maximal
// invalid subpart to replace by a single U+FFFD (at least 1).
size_t SequenceAt(std::string_view text, size_t i, size_t* invalid_len) {
  const auto c = static_cast<unsigned char>(text[i]);
  *invalid_len = 1;
  if (c < 0x80) return 1;
  size_t len = 0;
  // The allowed range of the second byte narrows the first continuation so
  // that overlongs, surrogates and code points above U+10FFFF are rejected
  // (Unicode Table 3-7).
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;  // 0x80..0xC1 or 0xF5..0xFF never start a character
  }
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= text.size()) {
      *invalid_len = k;
      return 0;
    }
    const auto b = static_cast<unsigned char>(text[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : IsContinuation(b);
    if (!ok) {
      *invalid_len = k;
      return 0;
    }
  }
  return len;
}

std::string Sanitize(std::string_view text, size_t max_bytes, bool replace_nul) {
  std::string out;
  out.reserve(text.size() < max_bytes ? text.size() : max_bytes);
  size_t i = 0;
  while (i < text.size()) {
    size_t invalid_len = 1;
    const size_t len = SequenceAt(text, i, &invalid_len);
    std::string_view piece;
    if (len == 0 || (replace_nul && text[i] == '\0')) {
      piece = kReplacement;
      i += len == 0 ? invalid_len : len;
    } else {
      piece = text.substr(i, len);
      i += len;
    }
    if (piece.size() > max_bytes - out.size()) break;
    out.append(piece);
  }
  return out;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // Runs of ASCII (the usual ids, names and JSON), 8 bytes at a time.
    uint64_t word = 0;
    while (i + sizeof word <= text.size() &&
           (std::memcpy(&word, text.data() + i, sizeof word), (word & kHighBits) == 0)) {
      i += sizeof word;
    }
    if (i == text.size()) break;
    size_t invalid_len = 0;
    const size_t len = SequenceAt(text, i, &invalid_len);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view text, size_t max_bytes) {
  return Sanitize(text, max_bytes, /*replace_nul=*/false);
}

std::string SanitizeText(std::string_view text, size_t max_bytes) {
  return Sanitize(text, max_bytes, /*replace_nul=*/true);
}

}  // namespace sluice
