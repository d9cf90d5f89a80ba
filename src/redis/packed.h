// Little-endian packing of the numbers a script reads with struct.unpack
// ('<B', '<I4', '<d'): the caller's side of the packed arguments of
// scripts.h. (One packed argument costs a script one unpack, where a
// decimal string per number costs a tonumber(), that is a strtod, each.)
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice::redis {

// The low `bytes` bytes of `v`, least significant first.
inline void AppendLittleEndian(uint64_t v, size_t bytes, std::string* out) {
  for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void AppendUint32(uint32_t v, std::string* out) { AppendLittleEndian(v, 4, out); }

// An IEEE double ('<d'): exact for integers up to 2^53.
inline void AppendDouble(double v, std::string* out) {
  AppendLittleEndian(std::bit_cast<uint64_t>(v), 8, out);
}

}  // namespace sluice::redis
