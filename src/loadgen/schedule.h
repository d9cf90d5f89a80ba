// ArrivalSchedule: when an open-loop load generator sends each request.
//
// The timeline starts at offset 0 with an optional warm-up (at the first
// step's rate, not measured), followed by the measured rate steps in order
// (one step for a plain `--rate`, several for a `--ramp`). Arrivals are
// either evenly spaced (constant rate) or a Poisson process (exponential gaps
// with the step's mean rate). The schedule never looks at responses: that is
// what makes the generator open-loop, and latency is measured from these
// offsets, so a slow server cannot hide its queueing (no coordinated
// omission).
//
// Splitting across threads: thread i of n uses rate / n with `phase` i / n
// (and its own seed), so the n constant schedules interleave into one
// evenly spaced stream and the n Poisson processes add up to one Poisson
// process of the full rate.
//
// Deterministic: the same Options give the same arrivals (the RNG is
// std::mt19937_64 with a portable uniform-to-exponential transform).
// Thread-safety: none; one owner calls Next().
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "common/status.h"

namespace sluice::loadgen {

// One measured step of the run.
struct RateStep {
  double rate_per_s = 0;    // mean arrivals per second, > 0
  int64_t duration_us = 0;  // > 0
};

struct ScheduleOptions {
  std::vector<RateStep> steps;  // at least one
  int64_t warmup_us = 0;        // before steps[0], at its rate; >= 0
  bool poisson = false;         // exponential gaps instead of even spacing
  uint64_t seed = 1;            // Poisson RNG seed
  double phase = 0;             // [0, 1): constant arrivals at (i + phase) / rate
};

struct Arrival {
  int64_t offset_ns = 0;  // from the start of the timeline (warm-up included)
  int step = -1;          // index into steps; -1 = warm-up (not measured)
};

class ArrivalSchedule {
 public:
  // Validates the options (steps present, rates and durations positive,
  // warm-up >= 0, phase in [0, 1)).
  static Result<ArrivalSchedule> Create(const ScheduleOptions& options);

  // The next arrival in time order, or nullopt once the timeline is over.
  std::optional<Arrival> Next();

  // Length of the whole timeline (warm-up + steps), in ns.
  int64_t total_ns() const { return segments_.empty() ? 0 : segments_.back().end_ns; }
  // Offset where step `i` begins (i == steps.size() gives total_ns()).
  int64_t StepStartNs(size_t i) const;

 private:
  struct Segment {
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    double rate_per_s = 0;
    int step = -1;
  };
  explicit ArrivalSchedule(const ScheduleOptions& options);
  double ExponentialGapNs(double rate_per_s);

  std::vector<Segment> segments_;
  bool poisson_ = false;
  double phase_ = 0;
  std::mt19937_64 rng_;
  size_t segment_ = 0;   // current segment
  uint64_t index_ = 0;   // constant: arrivals already given in this segment
  double next_ns_ = -1;  // poisson: next arrival; < 0 = draw from segment start
};

}  // namespace sluice::loadgen
