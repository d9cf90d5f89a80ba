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
  // Per-key rate limits of the tier's keys; 0 = unlimited.
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  // Admission: requests of this tier are refused (503) while the model's
  // queue holds more than this many requests. -1 = the seed default for the
  // tier's name (free 100, paid 500, others unlimited); 0 = unlimited.
  int64_t max_queue_depth = -1;
  // Admission: the same bound per accelerator device that can take work
  // (scales with the fleet: 25 per device is the seed's 100 on 4 devices).
  // 0 = none. Both bounds apply when both are set.
  int64_t max_queue_depth_per_device = 0;
  // An asynchronous request's queue deadline: arrival + this. Far later than
  // the synchronous budgets, so async work fills the capacity synchronous
  // traffic leaves idle and never goes ahead of it. After the queue it has
  // the time a synchronous request has (total_timeout minus its budget).
  int64_t async_budget_us = 60'000'000;
};

}  // namespace sluice
