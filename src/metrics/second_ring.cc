#include "metrics/second_ring.h"

#include <algorithm>
#include <stdexcept>

namespace sluice::metrics {
namespace {

constexpr uint64_t Pack(uint64_t second, uint64_t count) {
  return (second << 32) | std::min(count, SecondRing::kMaxCount);
}
constexpr uint64_t SecondOf(uint64_t word) { return word >> 32; }
constexpr uint64_t CountOf(uint64_t word) { return word & SecondRing::kMaxCount; }

int CheckedWindow(int window_seconds) {
  if (window_seconds < 1) throw std::invalid_argument("window_seconds must be >= 1");
  return window_seconds;
}

}  // namespace

SecondRing::SecondRing(TimePoint origin, int window_seconds)
    : origin_(origin),
      window_seconds_(CheckedWindow(window_seconds)),
      size_(static_cast<size_t>(window_seconds_) + 1),
      slots_(new std::atomic<uint64_t>[size_]()) {}

uint64_t SecondRing::SecondAt(TimePoint t) const {
  if (t <= origin_) return 0;
  // Truncated to 32 bits like the tags, so both wrap together.
  return static_cast<uint64_t>(
             std::chrono::duration_cast<std::chrono::seconds>(t - origin_).count()) &
         kMaxCount;
}

void SecondRing::Add(uint64_t second, uint64_t n) {
  if (n == 0) return;
  std::atomic<uint64_t>& slot = slots_[second % size_];
  uint64_t old_word = slot.load(std::memory_order_relaxed);
  while (true) {
    const uint64_t slot_second = SecondOf(old_word);
    uint64_t new_word;
    if (slot_second == second) {
      new_word = Pack(second, CountOf(old_word) + std::min(n, kMaxCount));
    } else if (slot_second < second) {
      new_word = Pack(second, n);  // stale: reset and count in one step
    } else {
      return;  // the slot already belongs to a later second
    }
    if (slot.compare_exchange_weak(old_word, new_word, std::memory_order_relaxed)) return;
  }
}

SecondRing::WindowSum SecondRing::SumComplete(uint64_t current) const {
  WindowSum sum;
  if (current == 0) return sum;
  const uint64_t span = std::min<uint64_t>(window_seconds_, current);
  sum.seconds = static_cast<int>(span);
  for (uint64_t s = current - span; s < current; ++s) {
    const uint64_t word = slots_[s % size_].load(std::memory_order_relaxed);
    if (SecondOf(word) == s) sum.total += CountOf(word);
  }
  return sum;
}

}  // namespace sluice::metrics
