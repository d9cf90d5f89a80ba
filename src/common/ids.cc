#include "common/ids.h"

#include <atomic>
#include <random>

namespace sluice {

namespace {
constexpr char kHex[] = "0123456789abcdef";

uint32_t ProcessPrefix() {
  static const uint32_t prefix = [] {
    std::random_device rd;
    return static_cast<uint32_t>(rd());
  }();
  return prefix;
}

std::atomic<uint32_t> g_sequence{0};

void PutHex32(uint32_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = kHex[(v >> (28 - 4 * i)) & 0xf];
}

bool ParseHex32(std::string_view s, uint32_t* out) {
  uint32_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}
}  // namespace

std::string NewRequestId() {
  std::string id = "req_0000000000000000";
  PutHex32(ProcessPrefix(), id.data() + 4);
  PutHex32(g_sequence.fetch_add(1, std::memory_order_relaxed), id.data() + 12);
  return id;
}

std::optional<uint32_t> LocalIdSequence(std::string_view id) {
  uint32_t prefix, seq;
  if (id.size() != 20 || id.substr(0, 4) != "req_") return std::nullopt;
  if (!ParseHex32(id.substr(4, 8), &prefix) || prefix != ProcessPrefix()) return std::nullopt;
  if (!ParseHex32(id.substr(12, 8), &seq)) return std::nullopt;
  return seq;
}

}  // namespace sluice
