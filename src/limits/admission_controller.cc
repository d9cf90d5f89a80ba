#include "limits/admission_controller.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>

namespace sluice {
namespace {

int64_t NowNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string Field(const std::string& model, const char* name) {
  return "admission" + (model.empty() ? std::string() : "[" + model + "]") + "." + name;
}

BatchThroughputEstimator::Options EstimatorOptions(const AdmissionController::Options& o) {
  BatchThroughputEstimator::Options e;
  e.max_batch_size = o.max_batch_size;
  e.prior_batch_fixed_us = o.prior_batch_fixed_us;
  e.prior_batch_per_item_us = o.prior_batch_per_item_us;
  e.time_constant_ms = o.throughput_time_constant_ms;
  return e;
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
    case AdmissionReject::kOverCapacity:
      return "over_capacity";
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
    case AdmissionReject::kOverCapacity:
      return Unavailable("overloaded: shedding this tier while arrivals exceed capacity" + retry);
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
  if (o.max_batch_size < 1) return bad("max_batch_size", ">= 1", "0");
  if (o.prior_batch_fixed_us < 0) {
    return bad("prior_batch_fixed_us", ">= 0", std::to_string(o.prior_batch_fixed_us));
  }
  if (o.prior_batch_per_item_us < 0) {
    return bad("prior_batch_per_item_us", ">= 0", std::to_string(o.prior_batch_per_item_us));
  }
  if (o.prior_batch_fixed_us + o.prior_batch_per_item_us <= 0) {
    return bad("prior_batch_fixed_us", "> 0 when prior_batch_per_item_us is 0", "0");
  }
  if (!(o.target_utilization > 0 && o.target_utilization <= 1)) {
    return bad("target_utilization", "in (0, 1]", std::to_string(o.target_utilization));
  }
  if (o.throughput_time_constant_ms < 1) {
    return bad("throughput_time_constant_ms", ">= 1",
               std::to_string(o.throughput_time_constant_ms));
  }
  if (o.arrival_window_s < 1 || o.arrival_window_s > 60) {
    return bad("arrival_window_s", "in 1..60", std::to_string(o.arrival_window_s));
  }
  if (!(o.shed_margin >= 0)) return bad("shed_margin", ">= 0", std::to_string(o.shed_margin));
  if (!(o.shed_hysteresis >= 0 && o.shed_hysteresis < 1)) {
    return bad("shed_hysteresis", "in [0, 1)", std::to_string(o.shed_hysteresis));
  }
  if (o.shed_eval_interval_ms < 0) {
    return bad("shed_eval_interval_ms", ">= 0", std::to_string(o.shed_eval_interval_ms));
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
      estimator_(EstimatorOptions(options)),
      per_slot_rps_(estimator_.ItemsPerSecond()),
      healthy_slots_(options.total_slots) {
  std::set<int> priorities;
  for (const AdmissionTier& tier : options_.tiers) {
    priorities.insert(tier.priority);
    min_queue_depth_ = std::min(min_queue_depth_, tier.max_queue_depth);
    arrivals_.push_back(
        std::make_unique<metrics::RateMeter>(options_.clock, options_.arrival_window_s));
  }
  for (const AdmissionTier& tier : options_.tiers) {
    class_of_tier_.push_back(
        static_cast<size_t>(std::distance(priorities.begin(), priorities.find(tier.priority))));
  }
  max_level_ = static_cast<int>(priorities.size()) - 1;
}

void AdmissionController::OnBatch(size_t batch_size, SteadyClock::duration accelerator_time) {
  const TimePoint now = options_.clock->Now();
  std::lock_guard lock(estimator_mu_);
  estimator_.AddBatch(now, batch_size, accelerator_time);
  per_slot_rps_.store(estimator_.ItemsPerSecond(), std::memory_order_relaxed);
  speed_factor_.store(estimator_.speed_factor(), std::memory_order_relaxed);
  measured_.store(estimator_.batches() > 0, std::memory_order_relaxed);
}

void AdmissionController::SetHealthySlots(size_t healthy) {
  healthy_slots_.store(std::min(healthy, options_.total_slots), std::memory_order_relaxed);
  // Capacity changed: the next decision re-evaluates the shedding level.
  next_eval_ns_.store(std::numeric_limits<int64_t>::min(), std::memory_order_release);
}

void AdmissionController::OnArrival(size_t tier) {
  if (tier < arrivals_.size()) arrivals_[tier]->Mark();
}

double AdmissionController::ThroughputRps() const {
  return static_cast<double>(healthy_slots_.load(std::memory_order_relaxed)) *
         per_slot_rps_.load(std::memory_order_relaxed);
}

size_t AdmissionController::ClassOf(size_t tier) const {
  return tier < class_of_tier_.size() ? class_of_tier_[tier] : 0;
}

int AdmissionController::EvaluateLevel(int current) const {
  const double capacity = ThroughputRps() * options_.target_utilization;
  // offered[k]: arrivals of the classes >= k (what is left after shedding k).
  std::vector<double> offered(static_cast<size_t>(max_level_) + 1, 0.0);
  for (size_t tier = 0; tier < arrivals_.size(); ++tier) {
    offered[class_of_tier_[tier]] += arrivals_[tier]->PerSecond();
  }
  for (int k = max_level_ - 1; k >= 0; --k) offered[k] += offered[k + 1];

  int level = 0;
  for (int k = 1; k <= max_level_; ++k) {
    double threshold = capacity * (k == 1 ? 1.0 : 1.0 + options_.shed_margin);
    if (current >= k) threshold *= 1.0 - options_.shed_hysteresis;
    if (!(offered[k - 1] > threshold)) break;
    level = k;
  }
  return level;
}

int AdmissionController::CurrentLevel(TimePoint now) {
  const int64_t now_ns = NowNs(now);
  if (now_ns >= next_eval_ns_.load(std::memory_order_acquire)) {
    // One caller re-evaluates; the others use the level in force.
    std::unique_lock lock(level_mu_, std::try_to_lock);
    if (lock.owns_lock() && now_ns >= next_eval_ns_.load(std::memory_order_acquire)) {
      level_.store(EvaluateLevel(level_.load(std::memory_order_relaxed)),
                   std::memory_order_relaxed);
      next_eval_ns_.store(now_ns + options_.shed_eval_interval_ms * 1'000'000,
                          std::memory_order_release);
    }
  }
  return level_.load(std::memory_order_relaxed);
}

AdmissionDecision AdmissionController::Admit(const AdmissionQuery& query) {
  AdmissionDecision d;
  d.shedding_level = CurrentLevel(options_.clock->Now());
  const double throughput = ThroughputRps();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const size_t ahead = query.queued_ahead.value_or(query.queue_depth);
  d.estimated_wait_s = throughput > 0 ? static_cast<double>(ahead) / throughput : kInf;

  const size_t depth_limit = query.tier < options_.tiers.size()
                                 ? options_.tiers[query.tier].max_queue_depth
                                 : min_queue_depth_;
  const double time_left_s = std::chrono::duration<double>(query.time_to_deadline).count();
  if (query.queue_depth > depth_limit) {
    d.reason = AdmissionReject::kQueueDepthThreshold;
  } else if (static_cast<int>(ClassOf(query.tier)) < d.shedding_level) {
    d.reason = AdmissionReject::kOverCapacity;
  } else if (throughput <= 0 || d.estimated_wait_s > time_left_s) {
    d.reason = AdmissionReject::kDeadlineUnreachable;
  }
  if (d.reason == AdmissionReject::kNone) return d;

  d.admitted = false;
  const double max_s = static_cast<double>(options_.max_retry_after_s);
  const double drain_s =
      throughput > 0 ? static_cast<double>(query.queue_depth) / throughput : max_s;
  d.retry_after_s = static_cast<int64_t>(std::clamp(std::ceil(drain_s), 1.0, max_s));
  return d;
}

AdmissionSnapshot AdmissionController::Snapshot() {
  AdmissionSnapshot s;
  s.shedding_level = CurrentLevel(options_.clock->Now());
  s.max_shedding_level = max_level_;
  s.healthy_slots = healthy_slots_.load(std::memory_order_relaxed);
  s.total_slots = options_.total_slots;
  s.throughput_per_slot_rps = per_slot_rps_.load(std::memory_order_relaxed);
  s.throughput_rps = static_cast<double>(s.healthy_slots) * s.throughput_per_slot_rps;
  s.capacity_rps = s.throughput_rps * options_.target_utilization;
  s.speed_factor = speed_factor_.load(std::memory_order_relaxed);
  s.measured = measured_.load(std::memory_order_relaxed);
  for (const auto& meter : arrivals_) {
    s.arrival_rps_by_tier.push_back(meter->PerSecond());
    s.arrival_rps += s.arrival_rps_by_tier.back();
  }
  return s;
}

}  // namespace sluice
