// Request ids: "req_" + 16 lowercase hex digits. The first 8 digits are a
// random per-process prefix (chosen at start from std::random_device), the
// last 8 a per-process sequence number — unique within a process run and,
// with high probability, across gateways. Not secret: they are trace ids.
// Thread-safe, lock-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string NewRequestId();

// The sequence number inside an id made by NewRequestId() in this process;
// nullopt for anything else (malformed, or another process's prefix).
std::optional<uint32_t> LocalIdSequence(std::string_view id);

}  // namespace sluice
