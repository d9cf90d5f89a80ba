#include "common/ids.h"

#include <cstdint>
#include <random>

namespace sluice {

namespace {
// splitmix64: tiny, fast, and well distributed for ids (not for secrets).
uint64_t NextRandom() {
  thread_local uint64_t state = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

std::string NewRequestId() {
  static const char* kHex = "0123456789abcdef";
  uint64_t v = NextRandom();
  std::string id = "req_0000000000000000";
  for (int i = 0; i < 16; ++i) id[4 + i] = kHex[(v >> (60 - 4 * i)) & 0xf];
  return id;
}

}  // namespace sluice
