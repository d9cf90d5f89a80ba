#include "common/clock.h"

namespace sluice {
namespace {
class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return SteadyClock::now(); }
};
}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace sluice
