#include "common/ids.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>

namespace sluice {

namespace {
constexpr char kHex[] = "0123456789abcdef";
constexpr size_t kPrefixAt = 4;     // after "req_"
constexpr size_t kSequenceAt = 20;  // after the 16 prefix digits
constexpr size_t kIdSize = 36;

uint64_t ProcessPrefix() {
  static const uint64_t prefix = [] {
    std::random_device rd;  // 32 bits per call
    return static_cast<uint64_t>(rd()) << 32 | static_cast<uint64_t>(rd());
  }();
  return prefix;
}

std::atomic<uint64_t> g_sequence{0};

void PutHex64(uint64_t v, char* out) {
  for (int i = 0; i < 16; ++i) out[i] = kHex[(v >> (60 - 4 * i)) & 0xf];
}

// Each byte's value as a lower-case hex digit, or 0xff (ParseHex64 runs
// twice per request: the request log finds a request's slot by its id).
constexpr std::array<uint8_t, 256> kHexValue = [] {
  std::array<uint8_t, 256> t{};
  t.fill(0xff);
  for (int i = 0; i < 16; ++i) t[static_cast<unsigned char>(kHex[i])] = static_cast<uint8_t>(i);
  return t;
}();

bool ParseHex64(std::string_view s, uint64_t* out) {
  uint64_t v = 0;
  uint8_t bad = 0;
  for (char c : s) {
    const uint8_t d = kHexValue[static_cast<unsigned char>(c)];
    bad |= d;
    v = v << 4 | (d & 0xf);
  }
  if (bad & 0xf0) return false;
  *out = v;
  return true;
}
}  // namespace

std::string NewRequestId() {
  std::string id(kIdSize, '0');
  std::memcpy(id.data(), "req_", kPrefixAt);
  PutHex64(ProcessPrefix(), id.data() + kPrefixAt);
  PutHex64(g_sequence.fetch_add(1, std::memory_order_relaxed), id.data() + kSequenceAt);
  return id;
}

std::optional<uint64_t> LocalIdSequence(std::string_view id) {
  uint64_t prefix = 0, seq = 0;
  if (id.size() != kIdSize || !id.starts_with("req_")) return std::nullopt;
  if (!ParseHex64(id.substr(kPrefixAt, 16), &prefix) || prefix != ProcessPrefix()) {
    return std::nullopt;
  }
  if (!ParseHex64(id.substr(kSequenceAt, 16), &seq)) return std::nullopt;
  return seq;
}

}  // namespace sluice
