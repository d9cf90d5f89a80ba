// OutcomeRecorder: the simulator's bookkeeping — every request's answer,
// checked to come exactly once, and every batch the dispatchers report —
// turned into a SimulationReport at the end of a run.
//
// A request is registered at arrival (OnArrival gives it an id) and then
// answered either at once by Submit() (OnRefused) or later through its
// completion (OnAnswer); a second answer of the same id is counted as
// answered_twice, an id never answered as unanswered. (Complete() is
// exactly-once by itself, so a double answer means a request both refused
// by Submit() and completed.) Up to 2^32 requests per run. Batch figures come
// from the DispatchObserver hooks (the ModelScheduler forwards its group's
// events here).
//
// Thread-safety: none; everything runs on the simulation's executor thread.
// Ownership: owns its counters only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dispatch_group.h"
#include "core/request.h"
#include "loadgen/latency_histogram.h"
#include "simulation/simulation_report.h"

namespace sluice {

class OutcomeRecorder final : public DispatchObserver {
 public:
  struct Options {
    TimePoint start;               // offset 0 of the run
    double duration_s = 0;         // arrivals happen in [0, duration_s)
    double warmup_s = 0;           // arrivals before this are left out of the totals
    double drain_s = 0;            // the run goes on this long after duration_s
    int devices = 1;               // for utilization
    const Clock* clock = nullptr;  // required; not owned: the run's virtual clock
  };
  explicit OutcomeRecorder(const Options& options);

  // A request stream; returns its index for OnArrival().
  size_t AddStream(std::string name, std::string tier);

  // A request of `stream` arrived at `at`; returns its id.
  uint32_t OnArrival(size_t stream, TimePoint at);
  // Submit() refused it: `reason` as in StreamReport::refused.
  void OnRefused(uint32_t id, size_t stream, TimePoint arrival, const char* reason);
  // Its completion ran at `now` with `outcome`.
  void OnAnswer(uint32_t id, size_t stream, TimePoint arrival, const InferenceOutcome& outcome,
                TimePoint now);

  // DispatchObserver.
  void OnBatchDone(size_t slot, size_t batch_size, SteadyClock::duration accelerator_time,
                   bool ok) override;
  void OnRetry(size_t slot, size_t requests) override { retried_requests_ += requests; }
  void OnDeadLetter(size_t requests) override { dead_letters_ += requests; }
  void OnBreakerChange(size_t endpoint, const std::string& name, BreakerState state) override;

  // Sets the stream, batch and bug-count fields of `report` (streams in the
  // order added: the first `regular_streams` are tiers, the rest hostile).
  // `now` is the end of the run.
  void Fill(size_t regular_streams, TimePoint now, SimulationReport* report) const;

 private:
  enum Reason : uint8_t {
    kQueueFull,
    kDeadlineUnreachable,
    kQueueDepthThreshold,
    kBackendsUnavailable,
    kInvalid,
    kUnavailable,  // any other 503
    kReasonCount,
  };
  struct Stream {
    std::string name;
    std::string tier;
    uint64_t offered = 0, ok = 0, timed_out = 0, failed = 0, other = 0;
    std::array<uint64_t, kReasonCount> refused{};
    uint64_t refused_after_queueing = 0;
    loadgen::LatencyHistogram latency_us;  // of the 200s
    std::vector<SecondCounts> per_second;
  };
  enum class Kind { kOk, kRefused, kTimedOut, kFailed, kOther };

  static Reason ReasonOf(const char* name);
  static const char* ReasonName(Reason reason);
  // Counts one answer; false if `id` was answered before.
  bool MarkAnswered(uint32_t id);
  void Count(Stream& s, TimePoint arrival, Kind kind);
  double OffsetS(TimePoint t) const;
  StreamReport ToReport(const Stream& s) const;

  const Options options_;
  std::vector<Stream> streams_;
  std::vector<uint8_t> answers_;  // per request id: answers so far (saturating)
  uint64_t answered_twice_ = 0;
  uint64_t batches_ = 0, failed_batches_ = 0, ok_batch_items_ = 0;
  uint64_t retried_requests_ = 0, dead_letters_ = 0, breaker_opens_ = 0;
  double busy_window_s_ = 0;  // device busy seconds inside [warmup, duration)
  std::vector<double> busy_per_second_;
};

}  // namespace sluice
