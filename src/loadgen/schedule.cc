#include "loadgen/schedule.h"

#include <cmath>
#include <string>

namespace sluice::loadgen {

Result<ArrivalSchedule> ArrivalSchedule::Create(const ScheduleOptions& options) {
  if (options.steps.empty()) return InvalidArgument("the schedule needs at least one rate step");
  for (size_t i = 0; i < options.steps.size(); ++i) {
    const RateStep& s = options.steps[i];
    if (!(s.rate_per_s > 0) || !std::isfinite(s.rate_per_s)) {
      return InvalidArgument("rate step " + std::to_string(i + 1) +
                             ": rate must be a positive number of requests per second");
    }
    if (s.duration_us <= 0) {
      return InvalidArgument("rate step " + std::to_string(i + 1) + ": duration must be positive");
    }
  }
  if (options.warmup_us < 0) return InvalidArgument("warm-up must not be negative");
  if (!(options.phase >= 0 && options.phase < 1)) {
    return InvalidArgument("phase must be in [0, 1)");
  }
  return ArrivalSchedule(options);
}

ArrivalSchedule::ArrivalSchedule(const ScheduleOptions& options)
    : poisson_(options.poisson), phase_(options.phase), rng_(options.seed) {
  int64_t t = 0;
  if (options.warmup_us > 0) {
    segments_.push_back({t, t + options.warmup_us * 1000, options.steps[0].rate_per_s, -1});
    t += options.warmup_us * 1000;
  }
  for (size_t i = 0; i < options.steps.size(); ++i) {
    const RateStep& s = options.steps[i];
    segments_.push_back({t, t + s.duration_us * 1000, s.rate_per_s, static_cast<int>(i)});
    t += s.duration_us * 1000;
  }
}

int64_t ArrivalSchedule::StepStartNs(size_t i) const {
  for (const Segment& s : segments_) {
    if (s.step == static_cast<int>(i)) return s.start_ns;
  }
  return total_ns();
}

double ArrivalSchedule::ExponentialGapNs(double rate_per_s) {
  // 53 random bits -> u in [0, 1); 1 - u in (0, 1] keeps log() finite.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  return -std::log1p(-u) * 1e9 / rate_per_s;
}

std::optional<Arrival> ArrivalSchedule::Next() {
  while (segment_ < segments_.size()) {
    const Segment& seg = segments_[segment_];
    double t;
    if (poisson_) {
      // Memoryless: a new segment may start its own process at its start.
      if (next_ns_ < 0)
        next_ns_ = static_cast<double>(seg.start_ns) + ExponentialGapNs(seg.rate_per_s);
      t = next_ns_;
    } else {
      // Computed from the index, not accumulated, so there is no drift.
      t = static_cast<double>(seg.start_ns) +
          (static_cast<double>(index_) + phase_) * 1e9 / seg.rate_per_s;
    }
    if (t < static_cast<double>(seg.end_ns)) {
      if (poisson_) {
        next_ns_ = t + ExponentialGapNs(seg.rate_per_s);
      } else {
        ++index_;
      }
      return Arrival{static_cast<int64_t>(t), seg.step};
    }
    ++segment_;
    index_ = 0;
    next_ns_ = -1;
  }
  return std::nullopt;
}

}  // namespace sluice::loadgen
