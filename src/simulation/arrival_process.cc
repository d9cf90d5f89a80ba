#include "simulation/arrival_process.h"

#include <cmath>
#include <limits>

namespace sluice {

ArrivalProcess::ArrivalProcess(const Options& options)
    : options_(options), rng_(options.seed), t_(options.start_s) {}

double ArrivalProcess::RateAt(double t, double* change_at) const {
  const double mean = options_.rate_rps;
  if (options_.kind != ArrivalKind::kBursty) {
    *change_at = std::numeric_limits<double>::infinity();
    return mean;
  }
  const double period = options_.burst_period_s;
  const double cycle_start = std::floor(t / period) * period;
  const double burst_end = cycle_start + period * options_.burst_on_fraction;
  if (t < burst_end) {
    *change_at = burst_end;
    return mean * options_.burst_factor;
  }
  *change_at = cycle_start + period;
  const double f = options_.burst_on_fraction;
  return std::max(0.0, mean * (1 - options_.burst_factor * f) / (1 - f));
}

std::optional<double> ArrivalProcess::Next() {
  if (!(options_.rate_rps > 0)) return std::nullopt;
  if (options_.kind == ArrivalKind::kConstant) {
    const double t = options_.start_s + static_cast<double>(constant_i_) / options_.rate_rps;
    if (t >= options_.end_s) return std::nullopt;
    ++constant_i_;
    return t;
  }
  // A Poisson process with a piecewise-constant rate: draw an exponential
  // gap at the current rate; a gap that crosses a rate change is redrawn
  // from the change (exact, the process being memoryless).
  while (t_ < options_.end_s) {
    double change_at = 0;
    const double rate = RateAt(t_, &change_at);
    if (rate <= 0) {
      t_ = change_at;
      continue;
    }
    const double u = std::generate_canonical<double, 53>(rng_);
    const double gap = -std::log1p(-u) / rate;
    if (t_ + gap >= change_at) {
      t_ = change_at;
      continue;
    }
    t_ += gap;
    if (t_ >= options_.end_s) break;
    return t_;
  }
  return std::nullopt;
}

}  // namespace sluice
