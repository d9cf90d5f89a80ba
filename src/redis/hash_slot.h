// Redis Cluster hash slots: which of the 16384 slots a key lives in.
//
// The slot is CRC16-XMODEM(key) mod 16384, over the key's hash tag when it
// has one: the part between the first '{' and the next '}', if non-empty
// (so "sluice:{m}:req" and "sluice:{m}:q:0" share a slot). Pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::redis {

inline constexpr int kHashSlots = 16384;

// CRC16-XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses.
uint16_t Crc16(std::string_view data);

// The slot of `key` (0..16383).
int KeySlot(std::string_view key);

}  // namespace sluice::redis
