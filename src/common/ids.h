// Request ids: "req_" + 16 lowercase hex digits from a per-thread
// generator seeded from std::random_device. Thread-safe, lock-free.
#pragma once

#include <string>

namespace sluice {

std::string NewRequestId();

}  // namespace sluice
