// UTF-8 hygiene for text that a backend or a client controls.
//
// Backend error bodies, per-item error strings and model output may hold any
// bytes, and Sluice cuts them to a byte budget before logging, storing or
// forwarding them. A cut in the middle of a character, or bytes that were
// never UTF-8, break JSON encoders and make PostgreSQL reject a whole COPY.
// These helpers turn such text into valid UTF-8 that fits a budget.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// True iff `text` is well-formed UTF-8 (RFC 3629): no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view text);

// `text` as valid UTF-8 of at most `max_bytes` bytes. Each maximal invalid
// subpart (a stray byte, an overlong or surrogate lead, a sequence cut
// short) becomes U+FFFD (3 bytes, EF BF BD), following the Unicode "maximal
// subpart" practice. When the result would exceed `max_bytes`, it is cut on a
// character boundary, so a multi-byte character is either whole or absent.
// NUL bytes are valid UTF-8 and are kept; see SanitizeText for stores that
// refuse them.
std::string SanitizeUtf8(std::string_view text, size_t max_bytes = SIZE_MAX);

// SanitizeUtf8, then each NUL byte replaced by U+FFFD as well: for text bound
// for a database (PostgreSQL refuses NUL in text values) or a log line.
std::string SanitizeText(std::string_view text, size_t max_bytes = SIZE_MAX);

}  // namespace sluice
