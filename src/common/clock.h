// Time and deferred work, injected so that deadlines, batching delays and
// rate limits are tested by stepping a fake clock instead of sleeping.
//
// Clock: a monotonic time source. Executor: runs callbacks serially (a strand)
// now or at a point in time. The real implementations (SystemClock,
// AsioExecutor in asio_executor.h) are thread-safe; FakeExecutor lives in
// testing/.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace sluice {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Micros = std::chrono::microseconds;
using Millis = std::chrono::milliseconds;

inline int64_t ToMicros(SteadyClock::duration d) {
  return std::chrono::duration_cast<Micros>(d).count();
}
inline double ToMillis(SteadyClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Thread-safe monotonic clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The real clock (std::chrono::steady_clock). Shared singleton, never freed.
Clock* SystemClock();

// Runs callbacks one at a time, in posting order for Post(). Implementations
// are thread-safe: Post/RunAt/Cancel may be called from any thread. Callbacks
// never run inline inside Post/RunAt.
class Executor {
 public:
  using TimerId = uint64_t;
  virtual ~Executor() = default;

  virtual const Clock& clock() const = 0;
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` at or after `when`. The id stays valid until the callback ran or
  // Cancel() was called; Cancel() of a fired or unknown id is a no-op.
  virtual TimerId RunAt(TimePoint when, std::function<void()> fn) = 0;
  // Best effort: returns true if the callback will not run.
  virtual bool Cancel(TimerId id) = 0;
};

}  // namespace sluice
