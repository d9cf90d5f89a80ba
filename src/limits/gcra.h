// GCRA (generic cell rate algorithm) arithmetic for one limit of `limit`
// units per 60 s window, with a burst of one whole window's allowance.
//
// The whole state of a limit is one number, the theoretical arrival time
// (TAT): the time at which the bucket is full again if nothing else is
// spent. TAT <= now means "full", which is also what a key with no stored
// state means, so full state can be forgotten without changing any answer.
// Spending `cost` units moves TAT to max(TAT, now) + cost * (window / limit);
// the spend fits iff the new TAT lies at most one window after now.
// Remaining units = (now + window - TAT) * limit / window, rounded down.
//
// Pure functions on integer nanoseconds: O(1), no allocation, no locks. The
// memory limiter runs them under its shard lock; a Redis limiter runs the
// same arithmetic in one atomic script. Unit conversion rounds down, so a
// limit is never stricter than configured (a whole window's worth of units,
// each rounded down, always fits).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace sluice::gcra {

inline constexpr int64_t kWindowNs = 60'000'000'000;

// Window time that `units` occupy under a limit of `limit` per window,
// rounded down; saturates far beyond any reachable time.
// REQUIRES: limit > 0, units >= 0.
inline int64_t UnitsToNs(int64_t units, int64_t limit) {
  constexpr __int128 kMaxNs = std::numeric_limits<int64_t>::max() / 4;
  const __int128 ns = static_cast<__int128>(units) * kWindowNs / limit;
  return static_cast<int64_t>(std::min(ns, kMaxNs));
}

// Units that can be spent now, 0..limit. REQUIRES: limit > 0.
inline int64_t Remaining(int64_t tat_ns, int64_t now_ns, int64_t limit) {
  const int64_t headroom_ns = now_ns + kWindowNs - std::max(tat_ns, now_ns);
  if (headroom_ns <= 0) return 0;
  return static_cast<int64_t>(static_cast<__int128>(headroom_ns) * limit / kWindowNs);
}

struct Outcome {
  bool allowed = false;
  int64_t tat_ns = 0;          // the state to store (unchanged when rejected)
  int64_t remaining = 0;       // units left after this check
  int64_t reset_ns = 0;        // until full again, >= 0
  int64_t retry_after_ns = 0;  // until `cost` fits; 0 when allowed
};

// Decides whether `cost` units fit now; on success the returned tat_ns
// consumes them. A cost above `limit` never fits: retry_after_ns is then the
// time until full. REQUIRES: limit > 0, cost >= 0.
inline Outcome Check(int64_t tat_ns, int64_t now_ns, int64_t limit, int64_t cost) {
  const int64_t base_ns = std::max(tat_ns, now_ns);
  Outcome out;
  out.tat_ns = tat_ns;
  if (cost > limit) {
    out.remaining = Remaining(tat_ns, now_ns, limit);
    out.reset_ns = base_ns - now_ns;
    out.retry_after_ns = out.reset_ns;
    return out;
  }
  const int64_t new_tat_ns = base_ns + UnitsToNs(cost, limit);
  const int64_t fits_at_ns = new_tat_ns - kWindowNs;
  out.allowed = fits_at_ns <= now_ns;
  if (out.allowed) out.tat_ns = new_tat_ns;
  const int64_t after_ns = out.allowed ? new_tat_ns : base_ns;
  out.remaining = Remaining(after_ns, now_ns, limit);
  out.reset_ns = after_ns - now_ns;
  out.retry_after_ns = out.allowed ? 0 : fits_at_ns - now_ns;
  return out;
}

// Moves the balance by `delta_units` after the fact: > 0 charges more (the
// bucket may go into debt, at most one window below empty), < 0 refunds (never
// above full). Returns the new TAT. REQUIRES: limit > 0.
inline int64_t Adjust(int64_t tat_ns, int64_t now_ns, int64_t limit, int64_t delta_units) {
  if (delta_units > 0) {
    const int64_t charged_ns = std::max(tat_ns, now_ns) + UnitsToNs(delta_units, limit);
    return std::min(charged_ns, now_ns + 2 * kWindowNs);
  }
  if (delta_units < 0 && tat_ns > now_ns) {
    return std::max(now_ns, tat_ns - UnitsToNs(-delta_units, limit));
  }
  return tat_ns;
}

}  // namespace sluice::gcra
