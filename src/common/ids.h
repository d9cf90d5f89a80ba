// Request ids: "req_" + 32 lowercase hex digits. The first 16 digits are a
// random 64-bit per-process prefix (chosen once per process from
// std::random_device), the last 16 a 64-bit per-process sequence number.
// Thread-safe, lock-free. Not secret: they are trace ids.
//
// Uniqueness: within a process the sequence never repeats (2^64 ids; at a
// million ids a second that is ~580,000 years). Across processes and restarts
// two ids collide only if two processes draw the same 64-bit prefix and
// reach the same sequence number: with P processes ever started against one
// request log the chance is about P^2 / 2^65 (1e-7 for a million processes).
// The request logs rely on this: their rows are keyed by id (SQLite and
// PostgreSQL upsert ON CONFLICT (id), see store/log_sink.h), so a repeated
// id would make a new request's row merge into an old one. The in-memory log
// never lets one request's finish overwrite another's record
// (core/memory_request_log.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string NewRequestId();

// The sequence number inside an id made by NewRequestId() in this process;
// nullopt for anything else (malformed, or another process's prefix).
std::optional<uint64_t> LocalIdSequence(std::string_view id);

}  // namespace sluice
