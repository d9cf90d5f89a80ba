// AdmissionController: capacity-aware admission for ONE model, decided
// before a request is queued, so that overload is answered at once with 503
// + Retry-After instead of a timeout later. One instance per model.
//
// Inputs.
//   OnBatch(size, accelerator_time)  from the model's dispatchers after each
//       successful batch: feeds the per-slot throughput estimate
//       (throughput_estimator.h: an EWMA speed factor on a batch cost model,
//       extrapolated to full batches; the prior cost model until the first
//       batch).
//   SetHealthySlots(n)  whenever slots fail or return (breaker opened or
//       closed, sim device disabled or enabled): effective at once.
//   OnArrival(tier)  once per request that reaches admission (before
//       Admit(), including those Admit() then rejects): the offered load per
//       tier, a sliding average over the last `arrival_window_s` complete
//       seconds (metrics::RateMeter).
//
// Figures.
//   throughput = healthy slots * per-slot throughput        (requests/s)
//   capacity   = throughput * target_utilization            (requests/s)
//   estimated wait = requests served before this one / throughput
//
// Rules, in this order (the first that applies is the reason reported):
//   1. kQueueDepthThreshold: the queue already holds more than the tier's
//      max_queue_depth requests (seed: free 100, paid 500, enterprise none).
//   2. kOverCapacity: the tier is shed (see shedding levels).
//   3. kDeadlineUnreachable: the estimated wait exceeds the time left until
//      the request's dispatch deadline (also: no healthy slot at all).
// Every rejection carries retry_after_s = ceil(queue_depth / throughput),
// the time for the current queue to drain, clamped to [1,
// max_retry_after_s] (the cap also when no slot is healthy), and maps to 503
// (kUnavailable; see ToStatus()).
//
// Shedding levels. Tiers are grouped into classes by priority, lowest
// first (seed: class 0 free, 1 paid, 2 enterprise). Level L sheds the L
// lowest classes; the highest class is never shed by this rule, so the
// level is 0..classes-1. With offered(k) = arrival rate of the classes >= k:
//   level >= 1  iff offered(0)   > capacity
//   level >= k  iff offered(k-1) > capacity * (1 + shed_margin),  k >= 2
// i.e. free is shed as soon as total arrivals exceed capacity, paid only if
// paid + enterprise alone still exceed it by the margin. To leave a level,
// its condition must fail by shed_hysteresis (threshold * (1 - hysteresis)),
// so the level does not flap around the boundary. Shed requests still count
// as arrivals, so shedding does not hide the overload that caused it. The
// level is re-evaluated at most every shed_eval_interval_ms (and at once
// after SetHealthySlots()), on the next Admit() or Snapshot().
//
// Thread-safety: all methods are thread-safe. Admit() and OnArrival() are
// lock-free except for one try-lock per evaluation interval; OnBatch() takes
// a short mutex. Nothing blocks. Ownership: `clock` is not owned and must
// outlive the controller.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "limits/throughput_estimator.h"
#include "metrics/rate_meter.h"

namespace sluice {

inline constexpr size_t kNoQueueDepthLimit = std::numeric_limits<size_t>::max();

// Admission settings of one tier; the vector index is the tier index
// (Principal::tier).
struct AdmissionTier {
  std::string name;  // for messages, e.g. "free"
  int priority = 0;  // higher = more important; the same as TierPolicy::priority
  // Requests of this tier are rejected while more than this many requests
  // (of any tier) are queued for the model.
  size_t max_queue_depth = kNoQueueDepthLimit;
};

// The seed's depth threshold for a tier name: "free" 100, "paid" 500,
// anything else (enterprise) kNoQueueDepthLimit. For wiring a tier table
// whose config gives no explicit threshold.
size_t SeedMaxQueueDepth(std::string_view tier_name);

enum class AdmissionReject {
  kNone,                 // admitted
  kQueueDepthThreshold,  // queue deeper than the tier's threshold
  kOverCapacity,         // the tier is being shed
  kDeadlineUnreachable,  // estimated wait beyond the request's deadline
};

// "none", "queue_depth_threshold", "over_capacity", "deadline_unreachable"
// (for JSON error codes and metric labels).
const char* AdmissionRejectName(AdmissionReject reason);

struct AdmissionQuery {
  // Tier index. An unknown index counts as the lowest class, with the
  // smallest depth threshold of any tier.
  size_t tier = 0;
  size_t queue_depth = 0;  // requests queued for this model now
  // Requests that will be dispatched before this one, if the queue can tell
  // (EDF: queued with an earlier dispatch deadline; strict: same or higher
  // priority). Unset: queue_depth, which is pessimistic for tiers with short
  // budgets under EDF.
  std::optional<size_t> queued_ahead;
  // Time left until the request's dispatch deadline.
  SteadyClock::duration time_to_deadline{};
};

struct AdmissionDecision {
  bool admitted = true;
  AdmissionReject reason = AdmissionReject::kNone;
  int64_t retry_after_s = 0;    // >= 1 when rejected; 0 when admitted
  double estimated_wait_s = 0;  // the wait estimate used (infinity: no capacity)
  int shedding_level = 0;       // the level in force for this decision

  // OK, or kUnavailable (HTTP 503) with a message naming the reason.
  Status ToStatus() const;
};

// Figures for GET /internal/health.
struct AdmissionSnapshot {
  double capacity_rps = 0;             // throughput * target_utilization
  double throughput_rps = 0;           // healthy_slots * throughput_per_slot_rps
  double throughput_per_slot_rps = 0;  // measured per device (prior until measured)
  double speed_factor = 1;             // measured / modelled batch time
  bool measured = false;               // false while running on the prior
  size_t healthy_slots = 0;
  size_t total_slots = 0;
  double arrival_rps = 0;  // all tiers
  std::vector<double> arrival_rps_by_tier;
  int shedding_level = 0;      // 0 none, 1 lowest class shed, ...
  int max_shedding_level = 0;  // number of priority classes - 1
};

class AdmissionController {
 public:
  struct Options {
    std::string model;                 // for messages
    std::vector<AdmissionTier> tiers;  // index = tier index; non-empty
    size_t total_slots = 1;            // accelerator slots (dispatchers), >= 1
    size_t max_batch_size = 32;        // the model's batch size, >= 1
    // Prior batch cost model, used before the first batch and for the shape
    // of the throughput curve (throughput_estimator.h). Seed sim: 34 ms +
    // 0.5 ms per item, i.e. 32 items in 50 ms = 640 requests/s per slot.
    int64_t prior_batch_fixed_us = 34'000;
    int64_t prior_batch_per_item_us = 500;
    double target_utilization = 0.75;             // (0, 1]
    int64_t throughput_time_constant_ms = 1'000;  // EWMA time constant, >= 1
    int arrival_window_s = 3;                     // arrival-rate window, 1..60
    double shed_margin = 0.2;                     // >= 0; see "Shedding levels"
    double shed_hysteresis = 0.1;                 // [0, 1)
    int64_t shed_eval_interval_ms = 100;          // >= 0
    int64_t max_retry_after_s = 30;               // >= 1; Retry-After cap
    const Clock* clock = nullptr;                 // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the bad field.
  static Result<std::unique_ptr<AdmissionController>> Create(const Options& options);

  // A successful batch of `batch_size` requests spent `accelerator_time` on
  // its slot. Failed or timed-out batches are not reported here.
  void OnBatch(size_t batch_size, SteadyClock::duration accelerator_time);

  // Slots able to run batches now; clamped to total_slots.
  void SetHealthySlots(size_t healthy);

  // One request of tier `tier` reached admission (see "Inputs").
  void OnArrival(size_t tier);

  // Applies the rules to one request. Records nothing about the request.
  AdmissionDecision Admit(const AdmissionQuery& query);
  AdmissionDecision Admit(size_t tier, size_t queue_depth, SteadyClock::duration time_to_deadline) {
    return Admit(AdmissionQuery{tier, queue_depth, std::nullopt, time_to_deadline});
  }

  AdmissionSnapshot Snapshot();

  const Options& options() const { return options_; }

 private:
  explicit AdmissionController(const Options& options);

  double ThroughputRps() const;  // healthy slots * per-slot throughput
  size_t ClassOf(size_t tier) const;
  // The level in force now, re-evaluated when the interval has passed.
  int CurrentLevel(TimePoint now);
  int EvaluateLevel(int current) const;  // REQUIRES: level_mu_

  const Options options_;
  size_t min_queue_depth_ = kNoQueueDepthLimit;  // over all tiers
  std::vector<size_t> class_of_tier_;            // tier index -> priority class (0 lowest)
  int max_level_ = 0;
  std::vector<std::unique_ptr<metrics::RateMeter>> arrivals_;  // one per tier

  std::mutex estimator_mu_;
  BatchThroughputEstimator estimator_;  // GUARDED_BY(estimator_mu_)
  std::atomic<double> per_slot_rps_;    // published estimator_.ItemsPerSecond()
  std::atomic<double> speed_factor_{1};
  std::atomic<bool> measured_{false};
  std::atomic<size_t> healthy_slots_;

  std::mutex level_mu_;  // serialises re-evaluation of the level
  std::atomic<int> level_{0};
  std::atomic<int64_t> next_eval_ns_{std::numeric_limits<int64_t>::min()};
};

}  // namespace sluice
