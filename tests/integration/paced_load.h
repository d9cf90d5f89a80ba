// Paced (open-loop-ish) load for the overload tests, built on LoadClient.
//
// LoadClient is closed-loop: a connection sends its next request only after
// the previous answer. Under overload that is the wrong shape, since a shed
// request comes back in a millisecond and its connection would at once offer
// another, so the offered rate would follow the server, not the test. Here
// the offered rate is fixed instead: every `tick` a new wave of requests
// starts, each request on its own fresh connection, whatever the earlier
// waves are still waiting for. Waves run concurrently (one LoadClient, and so
// one thread, each); the driver only paces their start, so a slow server
// cannot slow the offered load down.
//
// The tier of request i follows the seed mix 70/25/5 (free/paid/enterprise),
// evenly interleaved: of every 20 requests, one enterprise, five paid,
// fourteen free.
//
// Latencies are LoadClient's: from writing the request to the whole
// response, not counting the connect.
//
// Bounded: the number of waves is duration / tick; every request has
// `request_timeout` after its wave started; Run() returns once every wave is
// done. Thread-compatible: call from the test's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "testing/load_client.h"

namespace sluice::testing {

// "free", "paid" or "enterprise" for request `i` of a paced run (70/25/5).
std::string_view SeedMixTier(size_t i);

struct PacedLoadOptions {
  uint16_t port = 0;
  double rate_rps = 1'000;  // offered requests per second
  std::chrono::milliseconds duration{3'000};
  std::chrono::milliseconds tick{50};  // one wave per tick
  std::chrono::milliseconds request_timeout{15'000};
  // Called on the driving thread after each wave has started (e.g. to poll
  // /internal/health); should return well within a tick, or the next wave
  // leaves late.
  std::function<void()> after_wave;
};

struct PacedResult {
  std::string_view tier;  // SeedMixTier(index)
  LoadResult result;
};

// Sends about rate_rps * duration requests, request i built by make(i), and
// returns one result per request in index order.
std::vector<PacedResult> RunPacedLoad(const PacedLoadOptions& options,
                                      const std::function<LoadRequest(size_t)>& make);

// Counts and latencies of one tier's results.
struct TierSummary {
  size_t sent = 0;
  size_t ok = 0;                                     // 200
  size_t shed = 0;                                   // 503
  size_t rate_limited = 0;                           // 429
  size_t timed_out = 0;                              // 504
  size_t other = 0;                                  // anything else, transport errors included
  std::chrono::microseconds p50{0}, p95{0}, max{0};  // of the 200s
  // The server's own account (Server-Timing "queue;dur="): the longest
  // wait from arrival to dispatch of a 200, and the 200s without it. A
  // request not dispatched within its tier's budget is answered 504, so a
  // 200's wait is below the budget whatever the machine's load; the
  // end-to-end latencies above also count the client and the CPU it shares.
  std::chrono::microseconds max_queue_wait{0};
  size_t ok_without_queue_wait = 0;
};

TierSummary Summarize(const std::vector<PacedResult>& results, std::string_view tier);

// "sent 300: 200 ok (p50 12 ms, p95 40 ms, max 80 ms), 100 shed, ..." for logs.
std::string Describe(const TierSummary& s);

}  // namespace sluice::testing
