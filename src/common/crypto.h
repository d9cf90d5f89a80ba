// Small crypto helpers over OpenSSL. Thread-safe, allocation-light.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);
std::string ToHex(const Sha256Digest& digest);
// Parses 64 hex digits (either case); false on anything else.
bool ParseSha256Hex(std::string_view hex, Sha256Digest* out);
// Compares in time independent of where the inputs differ.
bool ConstantTimeEqual(const Sha256Digest& a, const Sha256Digest& b);
// Standard base64 (RFC 4648, with '=' padding) of `bytes`.
std::string Base64(std::string_view bytes);
// The bytes of standard base64 text (padded, no whitespace); nullopt for
// anything else.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace sluice
