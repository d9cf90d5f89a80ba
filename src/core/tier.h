// TierPolicy: what a tier buys its keys in the queue.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

struct TierPolicy {
  std::string name;  // "free", "paid", "enterprise"
  // Higher runs first in strict-priority mode; breaks deadline ties in EDF.
  int priority = 0;
  // Deadline = arrival + budget. Requests not dispatched by then get 504.
  int64_t latency_budget_us = 2'000'000;
  // Hard cap on time spent queued (seed: 2 s).
  int64_t max_queue_age_us = 2'000'000;
  // Hard cap on the whole request (seed: 4 s), answered 504 when passed.
  int64_t total_timeout_us = 4'000'000;
};

}  // namespace sluice
