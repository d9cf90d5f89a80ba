// ArrivalProcess: the arrival times of one open-loop request stream of a
// simulation — evenly spaced, Poisson, or bursty (Poisson whose rate
// alternates between a burst and a lull; see Scenario) — between a start
// and an end offset.
//
// Deterministic: the same Options give the same times (std::mt19937_64 and
// an explicit inverse-CDF exponential). Thread-compatible: one owner calls
// Next().
#pragma once

#include <cstdint>
#include <optional>
#include <random>

#include "simulation/scenario.h"

namespace sluice {

class ArrivalProcess {
 public:
  struct Options {
    ArrivalKind kind = ArrivalKind::kPoisson;
    double rate_rps = 0;  // mean arrivals per second; <= 0: none
    double start_s = 0;   // first arrival at or after this offset
    double end_s = 0;     // arrivals strictly before this offset
    // kBursty only (see Scenario; burst_factor * on_fraction <= 1).
    double burst_factor = 3;
    double burst_on_fraction = 0.2;
    double burst_period_s = 10;  // bursts start at multiples of this offset
    uint64_t seed = 1;
  };

  // REQUIRES: the burst fields satisfy Scenario's rules (ValidateScenario).
  explicit ArrivalProcess(const Options& options);

  // Offset in seconds of the next arrival, nondecreasing; nullopt once the
  // stream has ended.
  std::optional<double> Next();

 private:
  // The rate at offset t and the offset where that rate next changes.
  double RateAt(double t, double* change_at) const;

  const Options options_;
  std::mt19937_64 rng_;
  double t_;                 // the last arrival (or the start)
  uint64_t constant_i_ = 0;  // kConstant: arrivals given so far
};

}  // namespace sluice
