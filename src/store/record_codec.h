// Conversions shared by the SQLite and PostgreSQL adapters: wall-clock times
// as microseconds since the Unix epoch (0 = unknown), and request stages as
// the names stored in the `status` column.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/request_log.h"

namespace sluice::store {

inline int64_t ToUnixMicros(WallTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

inline WallTime FromUnixMicros(int64_t us) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::microseconds(us)));
}

// The stage stored as `name` (see RequestStageName()); an unknown name reads
// as failed, so a corrupt row is never reported as in progress.
inline RequestStage ParseStage(std::string_view name) {
  if (name == "queued") return RequestStage::kQueued;
  if (name == "processing") return RequestStage::kProcessing;
  if (name == "completed") return RequestStage::kCompleted;
  return RequestStage::kFailed;
}

}  // namespace sluice::store
