#include "tests/integration/paced_load.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <thread>
#include <utility>

#include "loadgen/load_connection.h"

namespace sluice::testing {

std::string_view SeedMixTier(size_t i) {
  const size_t slot = i % 20;
  if (slot == 0) return "enterprise";
  if (slot <= 5) return "paid";
  return "free";
}

std::vector<PacedResult> RunPacedLoad(const PacedLoadOptions& options,
                                      const std::function<LoadRequest(size_t)>& make) {
  using Clock = std::chrono::steady_clock;
  const int64_t waves = std::max<int64_t>(1, options.duration / options.tick);
  const double per_wave = options.rate_rps * std::chrono::duration<double>(options.tick).count();
  std::vector<std::unique_ptr<LoadClient>> clients;
  std::vector<size_t> first_index;  // of each wave
  size_t next = 0;
  const Clock::time_point start = Clock::now();
  for (int64_t w = 0; w < waves; ++w) {
    // Pacing, not synchronisation: wave w leaves at start + w * tick.
    std::this_thread::sleep_until(start + w * options.tick);
    const auto end = static_cast<size_t>(std::llround(per_wave * static_cast<double>(w + 1)));
    std::vector<LoadRequest> requests;
    first_index.push_back(next);
    for (; next < end; ++next) requests.push_back(make(next));
    if (requests.empty()) {
      clients.push_back(nullptr);
      continue;
    }
    const size_t n = requests.size();
    clients.push_back(std::make_unique<LoadClient>(
        LoadOptions{.port = options.port, .connections = n, .timeout = options.request_timeout},
        std::move(requests)));
    clients.back()->Start();
    if (options.after_wave) options.after_wave();
  }
  std::vector<PacedResult> results;
  results.reserve(next);
  for (size_t w = 0; w < clients.size(); ++w) {
    if (clients[w] == nullptr) continue;
    std::vector<LoadResult> wave = clients[w]->Wait();
    for (size_t k = 0; k < wave.size(); ++k) {
      results.push_back({SeedMixTier(first_index[w] + k), std::move(wave[k])});
    }
  }
  return results;
}

TierSummary Summarize(const std::vector<PacedResult>& results, std::string_view tier) {
  TierSummary s;
  std::vector<std::chrono::microseconds> ok_latency;
  for (const PacedResult& r : results) {
    if (r.tier != tier) continue;
    ++s.sent;
    switch (r.result.status) {
      case 200: {
        ++s.ok;
        ok_latency.push_back(r.result.latency);
        auto timing = r.result.headers.find("server-timing");
        const double wait_ms = timing == r.result.headers.end()
                                   ? -1
                                   : loadgen::ParseServerTimingMs(timing->second, "queue");
        if (wait_ms >= 0) {
          s.max_queue_wait =
              std::max(s.max_queue_wait, std::chrono::microseconds(std::llround(wait_ms * 1000)));
        } else {
          ++s.ok_without_queue_wait;
        }
        break;
      }
      case 503:
        ++s.shed;
        break;
      case 429:
        ++s.rate_limited;
        break;
      case 504:
        ++s.timed_out;
        break;
      default:
        ++s.other;
    }
  }
  if (!ok_latency.empty()) {
    std::sort(ok_latency.begin(), ok_latency.end());
    auto at = [&](double q) {
      size_t i = static_cast<size_t>(q * static_cast<double>(ok_latency.size() - 1));
      return ok_latency[i];
    };
    s.p50 = at(0.50);
    s.p95 = at(0.95);
    s.max = ok_latency.back();
  }
  return s;
}

std::string Describe(const TierSummary& s) {
  auto ms = [](std::chrono::microseconds d) { return std::to_string(d.count() / 1000) + " ms"; };
  return "sent " + std::to_string(s.sent) + ": " + std::to_string(s.ok) + " ok (p50 " + ms(s.p50) +
         ", p95 " + ms(s.p95) + ", max " + ms(s.max) + "), " + std::to_string(s.shed) +
         " shed (503), " + std::to_string(s.rate_limited) + " rate-limited (429), " +
         std::to_string(s.timed_out) + " timed out (504), " + std::to_string(s.other) +
         " other; longest queue wait " + ms(s.max_queue_wait) + " (server)";
}

}  // namespace sluice::testing
