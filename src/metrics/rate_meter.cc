#include "metrics/rate_meter.h"

#include <algorithm>

namespace sluice::metrics {

RateMeter::RateMeter(const Clock* clock, int window_seconds)
    : clock_(clock), ring_(clock->Now(), window_seconds) {}

void RateMeter::Mark(uint64_t n) { ring_.Add(ring_.SecondAt(clock_->Now()), n); }

double RateMeter::PerSecond() const {
  const SecondRing::WindowSum sum = ring_.SumComplete(ring_.SecondAt(clock_->Now()));
  return static_cast<double>(sum.total) / sum.seconds;
}

BusyMeter::BusyMeter(const Clock* clock, int window_seconds)
    : clock_(clock), ring_(clock->Now(), window_seconds) {}

void BusyMeter::AddBusy(std::chrono::steady_clock::duration d) {
  if (d <= std::chrono::steady_clock::duration::zero()) return;
  const TimePoint end = clock_->Now();
  const TimePoint start = end - d;
  const uint64_t last = ring_.SecondAt(end);
  // The ring holds the current second plus window_seconds before it.
  const uint64_t window = static_cast<uint64_t>(ring_.window_seconds());
  const uint64_t first = std::max(ring_.SecondAt(start), last >= window ? last - window : 0);
  for (uint64_t s = first; s <= last; ++s) {
    const TimePoint second_begin = ring_.origin() + std::chrono::seconds(s);
    const TimePoint lo = std::max(start, second_begin);
    const TimePoint hi = std::min(end, second_begin + std::chrono::seconds(1));
    if (hi <= lo) continue;
    ring_.Add(s, std::chrono::duration_cast<std::chrono::microseconds>(hi - lo).count());
  }
}

double BusyMeter::BusyFraction(size_t slots) const {
  if (slots == 0) return 0;
  const SecondRing::WindowSum sum = ring_.SumComplete(ring_.SecondAt(clock_->Now()));
  const double capacity_us = 1e6 * static_cast<double>(sum.seconds) * static_cast<double>(slots);
  return std::clamp(static_cast<double>(sum.total) / capacity_us, 0.0, 1.0);
}

}  // namespace sluice::metrics
