// RetryPolicy: how a batch that failed as a whole (connection refused, 5xx,
// timeout, malformed reply) is tried again before its requests are given up.
//
// Attempt k (k = 1 for the first retry) waits a random time in
// [(1 - jitter) * d, d] where d = min(initial_backoff_us * 2^(k-1),
// max_backoff_us) ("equal jitter" when jitter = 0.5), so retries from many
// slots do not arrive together. A retry never starts when its request's
// deadline would pass first: such requests are answered 504 instead. After
// max_retries retries the requests go to the dead-letter queue and their
// clients get 502. Pure value type; thread-compatible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "common/status.h"

namespace sluice {

struct RetryPolicy {
  int max_retries = 2;                  // retries after the first attempt; 0..10
  int64_t initial_backoff_us = 10'000;  // wait before the first retry; >= 0
  int64_t max_backoff_us = 200'000;     // cap of the doubling wait; >= initial
  double jitter = 0.5;                  // random fraction taken off the wait; 0..1

  bool operator==(const RetryPolicy&) const = default;

  Status Validate() const {
    if (max_retries < 0 || max_retries > 10) return InvalidArgument("max_retries must be in 0..10");
    if (initial_backoff_us < 0) return InvalidArgument("initial_backoff must be >= 0");
    if (max_backoff_us < initial_backoff_us) {
      return InvalidArgument("max_backoff must be >= initial_backoff");
    }
    if (!(jitter >= 0 && jitter <= 1)) return InvalidArgument("retry jitter must be in 0..1");
    return Status::Ok();
  }

  // The wait before retry `attempt` (1-based), in microseconds.
  template <typename Rng>
  int64_t BackoffUs(int attempt, Rng& rng) const {
    int64_t d = initial_backoff_us;
    for (int k = 1; k < attempt && d < max_backoff_us; ++k) d *= 2;
    d = std::min(d, max_backoff_us);
    std::uniform_real_distribution<double> u(1.0 - jitter, 1.0);
    return static_cast<int64_t>(static_cast<double>(d) * u(rng));
  }
};

}  // namespace sluice
