// AdmissionController: capacity-aware admission for ONE model, decided
// before a request is queued. It refuses a request only when it would miss
// its deadline or a hard bound is hit — never to keep the accelerators
// below some utilisation — so under overload the devices stay busy with
// work that succeeds, and only the excess is refused, lowest tier first.
// One instance per model.
//
// Inputs.
//   cost model (batch_cost_model.h, shared with the model's dispatchers):
//       what a full batch costs on one slot, learnt from real batches.
//   SetSlots({healthy, probing, next_probe_at}) whenever slots fail or
//       return (breaker opened, half-open or closed; sim device disabled or
//       enabled): effective at once.
//   OnArrival(tier)  once per request that reaches admission (before
//       Admit(), including those Admit() then refuses): the offered load per
//       tier, a sliding average over the last `arrival_window_s` seconds.
//
// The prediction. A queued request is dispatched once everything ahead of
// it in dispatch order has been served, and meanwhile every request that
// arrives later but overtakes it (a tier of higher priority) is served too:
//   throughput   mu  = healthy slots * full-batch requests/s per slot
//   overtaking   lam = arrival rate of the tiers of higher priority
//   wait         W   = ahead / max(mu - lam, mu * min_share)
// It is admitted iff W * (1 + deadline_margin) <= time left until its
// dispatch deadline, and W * (1 + deadline_margin) + the batch it would
// ride in (ahead + 1 requests, at most a full one) <= time left until its
// total deadline (a client's short deadline is refused rather than
// admitted to expire). In steady overload the lowest tier's backlog grows
// until W reaches its budget; from then on exactly its excess is refused,
// while higher tiers (whose `lam` excludes the lowest) are still admitted;
// the top tier is refused only when its own load exceeds the devices.
//
// Rules, in this order (the first that applies is the reason reported):
//   1. kQueueDepthThreshold: more than the tier's max_queue_depth requests
//      are queued, or more than max_queue_depth_per_slot per healthy slot
//      (hard bounds; seed: free 100, paid 500 on 4 devices, enterprise none).
//   2. kBackendsUnavailable: no slot can take work and no endpoint is due
//      to probe. Retry-After = time until the next probe (or the cap).
//      While an endpoint is probing (half-open) and none is healthy,
//      requests are admitted until one batch is queued: the probe batch;
//      beyond it, Retry-After is one batch (the probe's verdict).
//   3. kDeadlineUnreachable: W as above misses the deadline.
// Every refusal carries retry_after_s >= 1 (at most max_retry_after_s) and
// maps to 503 (kUnavailable; see ToStatus()).
//
// Thread-safety: all methods are thread-safe and lock-free (atomics; the
// arrival meters are lock-free). Nothing blocks. Ownership: `clock` and
// `cost_model` are not owned and must outlive the controller.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "limits/batch_cost_model.h"
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
  // The same per healthy slot (at least one): a bound that follows the
  // fleet's size. 0 = none.
  size_t max_queue_depth_per_slot = 0;
};

// The seed's depth threshold for a tier name: "free" 100, "paid" 500,
// anything else (enterprise) kNoQueueDepthLimit. For wiring a tier table
// whose config gives no explicit threshold.
size_t SeedMaxQueueDepth(std::string_view tier_name);

enum class AdmissionReject {
  kNone,                 // admitted
  kQueueDepthThreshold,  // queue deeper than the tier's threshold
  kBackendsUnavailable,  // no slot can take work and none is probing
  kDeadlineUnreachable,  // predicted dispatch after the request's deadline
};

// "none", "queue_depth_threshold", "backends_unavailable",
// "deadline_unreachable" (for JSON error reasons and metric labels).
const char* AdmissionRejectName(AdmissionReject reason);

struct AdmissionQuery {
  // Tier index. An unknown index counts as the lowest priority, with the
  // smallest depth threshold of any tier.
  size_t tier = 0;
  size_t queue_depth = 0;  // requests queued for this model now
  // Requests that will be dispatched before this one, if the queue can tell.
  // Unset: queue_depth (pessimistic).
  std::optional<size_t> queued_ahead;
  // Time left until the request's dispatch deadline.
  SteadyClock::duration time_to_deadline{};
  // Time left until its total deadline; zero = not checked. A request is
  // refused when the predicted wait plus one full batch would pass it.
  SteadyClock::duration time_to_total_deadline{};
};

struct AdmissionDecision {
  bool admitted = true;
  AdmissionReject reason = AdmissionReject::kNone;
  int64_t retry_after_s = 0;    // >= 1 when rejected; 0 when admitted
  double estimated_wait_s = 0;  // the wait predicted (infinity: no capacity)

  // OK, or kUnavailable (HTTP 503) with a message naming the reason.
  Status ToStatus() const;
};

// Which slots can take work; see SetSlots().
struct SlotAvailability {
  size_t healthy = 0;  // slots that can take a batch now (enabled, breaker closed)
  size_t probing = 0;  // endpoints half-open: one probe batch each may run
  // When the next open breaker may probe; unset when none is open.
  std::optional<TimePoint> next_probe_at;
};

// Figures for GET /internal/health and /metrics.
struct AdmissionSnapshot {
  double capacity_rps = 0;             // healthy_slots * throughput_per_slot_rps
  double throughput_per_slot_rps = 0;  // full batches on one slot (prior until measured)
  double batch_fixed_ms = 0;           // learnt cost of a batch: fixed part
  double batch_per_item_ms = 0;        // learnt cost of a batch: per request
  double speed_factor = 1;             // measured / prior batch time
  bool measured = false;               // false while running on the prior
  size_t healthy_slots = 0;
  size_t probing_endpoints = 0;
  size_t total_slots = 0;
  double arrival_rps = 0;  // all tiers
  std::vector<double> arrival_rps_by_tier;
};

class AdmissionController {
 public:
  struct Options {
    std::string model;                 // for messages
    std::vector<AdmissionTier> tiers;  // index = tier index; non-empty
    size_t total_slots = 1;            // accelerator slots (dispatchers), >= 1
    // Required; not owned. The model's learnt batch cost (full batches).
    const BatchCostModel* cost_model = nullptr;
    int arrival_window_s = 2;        // arrival-rate window, 1..60
    double deadline_margin = 0.1;    // >= 0: predicted waits are stretched by this
    double min_share = 0.05;         // (0, 1]: floor of the throughput left to a tier
    int64_t max_retry_after_s = 30;  // >= 1; Retry-After cap
    const Clock* clock = nullptr;    // default: SystemClock()
  };

  // Errors: kInvalidArgument naming the bad field.
  static Result<std::unique_ptr<AdmissionController>> Create(const Options& options);

  // The slots able to run batches now; `healthy` is clamped to the total.
  void SetSlots(const SlotAvailability& slots);
  // The model's slots now (a reload changed its backends); >= 1. Thread-safe.
  void SetTotalSlots(size_t total);
  // The tiers' queue-depth bounds from `tiers` (a reload): the same tiers,
  // in the same order, as Options::tiers; their priorities stay. The next
  // Admit() applies them. Thread-safe. Errors: kInvalidArgument for
  // another number of tiers.
  Status SetQueueDepthLimits(const std::vector<AdmissionTier>& tiers);
  // SetSlots() with no probing endpoint (capacity read from elsewhere, e.g.
  // the worker registry in scale-out).
  void SetHealthySlots(size_t healthy) { SetSlots({healthy, 0, std::nullopt}); }

  // One request of tier `tier` reached admission (see "Inputs").
  void OnArrival(size_t tier);

  // Applies the rules to one request. Records nothing about the request.
  AdmissionDecision Admit(const AdmissionQuery& query);
  AdmissionDecision Admit(size_t tier, size_t queue_depth, SteadyClock::duration time_to_deadline) {
    return Admit(AdmissionQuery{tier, queue_depth, std::nullopt, time_to_deadline});
  }

  AdmissionSnapshot Snapshot() const;

  const Options& options() const { return options_; }
  const BatchCostModel& cost_model() const { return *options_.cost_model; }

 private:
  explicit AdmissionController(const Options& options);

  double ThroughputRps() const;  // healthy slots * per-slot throughput
  // Arrivals per second of the tiers that overtake `tier` (higher priority).
  double OvertakingRps(size_t tier) const;
  AdmissionDecision Refuse(AdmissionReject reason, double retry_after_s) const;

  const Options options_;
  // The depth bound of `tier` with `healthy` slots.
  size_t DepthLimit(size_t tier, size_t healthy) const;

  // Each tier's queue-depth bounds (Options::tiers', or a reload's), and
  // the tightest of them for unknown tier indexes. Each is read alone: a
  // reload's change reaches the next Admit().
  struct DepthBounds {
    std::atomic<size_t> max_queue_depth{kNoQueueDepthLimit};
    std::atomic<size_t> max_queue_depth_per_slot{0};
  };
  std::unique_ptr<DepthBounds[]> depth_bounds_;                // one per tier
  std::atomic<size_t> min_queue_depth_{kNoQueueDepthLimit};    // over all tiers
  std::atomic<size_t> min_depth_per_slot_{0};                  // over all tiers that set one
  int min_priority_ = 0;                                       // for unknown tier indexes
  std::vector<std::unique_ptr<metrics::RateMeter>> arrivals_;  // one per tier

  std::atomic<size_t> total_slots_;  // Options::total_slots, or a reload's
  std::atomic<size_t> healthy_slots_;
  std::atomic<size_t> probing_endpoints_{0};
  std::atomic<int64_t> next_probe_ns_{-1};  // -1: none open
};

}  // namespace sluice
