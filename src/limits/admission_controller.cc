#include "limits/admission_controller.h"

#include <algorithm>
#include <cmath>

namespace sluice {
namespace {

int64_t NowNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string Field(const std::string& model, const char* name) {
  return "admission" + (model.empty() ? std::string() : "[" + model + "]") + "." + name;
}

}  // namespace

size_t SeedMaxQueueDepth(std::string_view tier_name) {
  if (tier_name == "free") return 100;
  if (tier_name == "paid") return 500;
  return kNoQueueDepthLimit;
}

const char* AdmissionRejectName(AdmissionReject reason) {
  switch (reason) {
    case AdmissionReject::kQueueDepthThreshold:
      return "queue_depth_threshold";
    case AdmissionReject::kBackendsUnavailable:
      return "backends_unavailable";
    case AdmissionReject::kDeadlineUnreachable:
      return "deadline_unreachable";
    case AdmissionReject::kNone:
      break;
  }
  return "none";
}

Status AdmissionDecision::ToStatus() const {
  const std::string retry = "; retry in " + std::to_string(retry_after_s) + " s";
  switch (reason) {
    case AdmissionReject::kNone:
      return Status::Ok();
    case AdmissionReject::kQueueDepthThreshold:
      return Unavailable("overloaded: the queue is deeper than this tier accepts" + retry);
    case AdmissionReject::kBackendsUnavailable:
      return Unavailable("no accelerator endpoint of this model is available" + retry);
    case AdmissionReject::kDeadlineUnreachable:
      return Unavailable("overloaded: the request cannot be dispatched before its deadline" +
                         retry);
  }
  return Unavailable("overloaded" + retry);
}

Result<std::unique_ptr<AdmissionController>> AdmissionController::Create(const Options& o) {
  auto bad = [&](const char* field, const std::string& rule, const std::string& got) {
    return InvalidArgument(Field(o.model, field) + ": must be " + rule + ", got " + got);
  };
  if (o.tiers.empty()) return bad("tiers", "non-empty", "none");
  if (o.total_slots < 1) return bad("total_slots", ">= 1", "0");
  if (o.cost_model == nullptr) return bad("cost_model", "set", "none");
  if (o.arrival_window_s < 1 || o.arrival_window_s > 60) {
    return bad("arrival_window_s", "in 1..60", std::to_string(o.arrival_window_s));
  }
  if (!(o.deadline_margin >= 0)) {
    return bad("deadline_margin", ">= 0", std::to_string(o.deadline_margin));
  }
  if (!(o.min_share > 0 && o.min_share <= 1)) {
    return bad("min_share", "in (0, 1]", std::to_string(o.min_share));
  }
  if (o.max_retry_after_s < 1) {
    return bad("max_retry_after_s", ">= 1", std::to_string(o.max_retry_after_s));
  }
  Options resolved = o;
  if (resolved.clock == nullptr) resolved.clock = SystemClock();
  return std::unique_ptr<AdmissionController>(new AdmissionController(resolved));
}

AdmissionController::AdmissionController(const Options& options)
    : options_(options),
      depth_bounds_(std::make_unique<DepthBounds[]>(options.tiers.size())),
      total_slots_(options.total_slots),
      healthy_slots_(options.total_slots) {
  min_priority_ = options_.tiers.front().priority;
  for (const AdmissionTier& tier : options_.tiers) {
    min_priority_ = std::min(min_priority_, tier.priority);
    arrivals_.push_back(
        std::make_unique<metrics::RateMeter>(options_.clock, options_.arrival_window_s));
  }
  (void)SetQueueDepthLimits(options_.tiers);  // the same shape: cannot fail
}

Status AdmissionController::SetQueueDepthLimits(const std::vector<AdmissionTier>& tiers) {
  if (tiers.size() != options_.tiers.size()) {
    return InvalidArgument("model '" + options_.model + "': admission has " +
                           std::to_string(options_.tiers.size()) + " tiers, not " +
                           std::to_string(tiers.size()));
  }
  size_t min_depth = kNoQueueDepthLimit;
  size_t min_per_slot = 0;
  for (size_t t = 0; t < tiers.size(); ++t) {
    const AdmissionTier& tier = tiers[t];
    depth_bounds_[t].max_queue_depth.store(tier.max_queue_depth, std::memory_order_relaxed);
    depth_bounds_[t].max_queue_depth_per_slot.store(tier.max_queue_depth_per_slot,
                                                    std::memory_order_relaxed);
    min_depth = std::min(min_depth, tier.max_queue_depth);
    if (tier.max_queue_depth_per_slot > 0 &&
        (min_per_slot == 0 || tier.max_queue_depth_per_slot < min_per_slot)) {
      min_per_slot = tier.max_queue_depth_per_slot;
    }
  }
  min_queue_depth_.store(min_depth, std::memory_order_relaxed);
  min_depth_per_slot_.store(min_per_slot, std::memory_order_relaxed);
  return Status::Ok();
}

void AdmissionController::SetTotalSlots(size_t total) {
  total_slots_.store(std::max<size_t>(total, 1), std::memory_order_relaxed);
}

void AdmissionController::SetSlots(const SlotAvailability& slots) {
  healthy_slots_.store(std::min(slots.healthy, total_slots_.load(std::memory_order_relaxed)),
                       std::memory_order_relaxed);
  probing_endpoints_.store(slots.probing, std::memory_order_relaxed);
  next_probe_ns_.store(slots.next_probe_at ? NowNs(*slots.next_probe_at) : -1,
                       std::memory_order_relaxed);
}

void AdmissionController::OnArrival(size_t tier) {
  if (tier < arrivals_.size()) arrivals_[tier]->Mark();
}

double AdmissionController::ThroughputRps() const {
  return static_cast<double>(healthy_slots_.load(std::memory_order_relaxed)) *
         options_.cost_model->FullBatchRps();
}

double AdmissionController::OvertakingRps(size_t tier) const {
  const int priority = tier < options_.tiers.size() ? options_.tiers[tier].priority : min_priority_;
  double rps = 0;
  for (size_t t = 0; t < options_.tiers.size(); ++t) {
    if (options_.tiers[t].priority > priority) rps += arrivals_[t]->PerSecond();
  }
  return rps;
}

size_t AdmissionController::DepthLimit(size_t tier, size_t healthy) const {
  const bool known = tier < options_.tiers.size();
  size_t limit = known ? depth_bounds_[tier].max_queue_depth.load(std::memory_order_relaxed)
                       : min_queue_depth_.load(std::memory_order_relaxed);
  const size_t per_slot =
      known ? depth_bounds_[tier].max_queue_depth_per_slot.load(std::memory_order_relaxed)
            : min_depth_per_slot_.load(std::memory_order_relaxed);
  if (per_slot > 0) limit = std::min(limit, per_slot * std::max<size_t>(healthy, 1));
  return limit;
}

AdmissionDecision AdmissionController::Refuse(AdmissionReject reason, double retry_after_s) const {
  AdmissionDecision d;
  d.admitted = false;
  d.reason = reason;
  const double max_s = static_cast<double>(options_.max_retry_after_s);
  d.retry_after_s = static_cast<int64_t>(std::clamp(std::ceil(retry_after_s), 1.0, max_s));
  return d;
}

AdmissionDecision AdmissionController::Admit(const AdmissionQuery& query) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double throughput = ThroughputRps();
  const size_t depth_limit = DepthLimit(query.tier, healthy_slots_.load(std::memory_order_relaxed));
  if (query.queue_depth > depth_limit) {
    // The excess over the bound drains at the model's throughput.
    const double excess = static_cast<double>(query.queue_depth - depth_limit);
    return Refuse(AdmissionReject::kQueueDepthThreshold,
                  throughput > 0 ? excess / throughput : kInf);
  }
  if (throughput <= 0) {
    // Nothing healthy: admit only the probe batch of a half-open endpoint.
    if (probing_endpoints_.load(std::memory_order_relaxed) > 0) {
      if (query.queue_depth < options_.cost_model->max_batch_size()) return AdmissionDecision{};
      // The probe's verdict is one batch away.
      AdmissionDecision d =
          Refuse(AdmissionReject::kBackendsUnavailable,
                 options_.cost_model->BatchMicros(options_.cost_model->max_batch_size()) / 1e6);
      d.estimated_wait_s = kInf;
      return d;
    }
    const int64_t probe_ns = next_probe_ns_.load(std::memory_order_relaxed);
    const double to_probe_s =
        probe_ns < 0 ? kInf : static_cast<double>(probe_ns - NowNs(options_.clock->Now())) / 1e9;
    AdmissionDecision d = Refuse(AdmissionReject::kBackendsUnavailable, to_probe_s);
    d.estimated_wait_s = kInf;
    return d;
  }
  const double share =
      std::max(throughput - OvertakingRps(query.tier), throughput * options_.min_share);
  const size_t ahead = query.queued_ahead.value_or(query.queue_depth);
  AdmissionDecision d;
  d.estimated_wait_s = static_cast<double>(ahead) / share;
  const double stretched_s = d.estimated_wait_s * (1 + options_.deadline_margin);
  double time_left_s = std::chrono::duration<double>(query.time_to_deadline).count();
  if (query.time_to_total_deadline > SteadyClock::duration::zero()) {
    // Dispatched in time is not enough: its batch (about what is ahead,
    // up to a full one) must also finish.
    const size_t batch = std::clamp<size_t>(ahead + 1, 1, options_.cost_model->max_batch_size());
    const double batch_s = options_.cost_model->BatchMicros(batch) / 1e6;
    time_left_s = std::min(
        time_left_s, std::chrono::duration<double>(query.time_to_total_deadline).count() - batch_s);
  }
  if (stretched_s <= time_left_s) return d;
  // Come back when the backlog ahead has drained enough to fit the deadline.
  const double wait_s = d.estimated_wait_s;
  d = Refuse(AdmissionReject::kDeadlineUnreachable,
             wait_s - std::max(0.0, time_left_s) / (1 + options_.deadline_margin));
  d.estimated_wait_s = wait_s;
  return d;
}

AdmissionSnapshot AdmissionController::Snapshot() const {
  AdmissionSnapshot s;
  const BatchCostModel& cost = *options_.cost_model;
  s.healthy_slots = healthy_slots_.load(std::memory_order_relaxed);
  s.probing_endpoints = probing_endpoints_.load(std::memory_order_relaxed);
  s.total_slots = total_slots_.load(std::memory_order_relaxed);
  s.throughput_per_slot_rps = cost.FullBatchRps();
  s.capacity_rps = static_cast<double>(s.healthy_slots) * s.throughput_per_slot_rps;
  s.batch_fixed_ms = cost.FixedMicros() / 1000;
  s.batch_per_item_ms = cost.PerItemMicros() / 1000;
  s.speed_factor = cost.speed_factor();
  s.measured = cost.measured();
  for (const auto& meter : arrivals_) {
    s.arrival_rps_by_tier.push_back(meter->PerSecond());
    s.arrival_rps += s.arrival_rps_by_tier.back();
  }
  return s;
}

}  // namespace sluice
