#include "core/model_scheduler.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

namespace sluice {
namespace {

// The slots of `next` that match a slot out of service in `old`: one of an
// endpoint of the same name, at the same rank among its endpoint's slots.
std::vector<size_t> SlotsStillOutOfService(const DispatchGroup& old, const DispatchGroup& next) {
  std::map<std::pair<std::string, size_t>, size_t> by_place;  // (endpoint, rank) -> slot
  std::vector<size_t> rank(next.endpoint_count(), 0);
  for (size_t s = 0; s < next.slot_count(); ++s) {
    const size_t e = next.slot_endpoint(s);
    by_place.emplace(std::make_pair(next.endpoint_name(e), rank[e]++), s);
  }
  std::vector<size_t> out;
  std::vector<size_t> old_rank(old.endpoint_count(), 0);
  for (size_t s = 0; s < old.slot_count(); ++s) {
    const size_t e = old.slot_endpoint(s);
    const size_t r = old_rank[e]++;
    if (old.slot_enabled(s)) continue;
    auto it = by_place.find({old.endpoint_name(e), r});
    if (it != by_place.end()) out.push_back(it->second);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<ModelScheduler>> ModelScheduler::Create(
    Options options, std::vector<std::unique_ptr<Backend>> slots) {
  if (options.dispatch.executor == nullptr) {
    return InvalidArgument("model '" + options.dispatch.model + "': scheduler needs an executor");
  }
  std::unique_ptr<ModelScheduler> s(new ModelScheduler());
  s->model_ = options.dispatch.model;
  s->observer_ = options.observer;
  auto queue = MemoryQueue::Create(options.queue);
  if (!queue.ok()) return queue.status();
  s->queue_ = std::move(queue).value();

  BatchCostModel::Options cost = options.cost;
  cost.max_batch_size = options.dispatch.max_batch_size;
  cost.clock = &options.dispatch.executor->clock();
  auto cost_model = BatchCostModel::Create(cost);
  if (!cost_model.ok()) return cost_model.status();
  s->cost_ = std::move(cost_model).value();

  if (options.admission) {
    AdmissionController::Options a = *options.admission;
    a.total_slots = std::max<size_t>(slots.size(), 1);
    a.cost_model = s->cost_.get();
    a.clock = cost.clock;
    auto admission = AdmissionController::Create(a);
    if (!admission.ok()) return admission.status();
    s->admission_ = std::move(admission).value();
  }

  ScalingAdvisor::Options sc = options.scaling;
  sc.clock = cost.clock;
  auto scaling = ScalingAdvisor::Create(sc);
  if (!scaling.ok()) return scaling.status();
  s->scaling_ = std::move(scaling).value();
  s->executor_ = options.dispatch.executor;
  s->alive_ = std::make_shared<ModelScheduler*>(s.get());

  auto group = s->NewGroup(options.dispatch, std::move(slots));
  if (!group.ok()) return group.status();
  s->group_.store(std::shared_ptr<DispatchGroup>(std::move(group).value()));
  return s;
}

Result<std::unique_ptr<DispatchGroup>> ModelScheduler::NewGroup(
    DispatchGroup::Options dispatch, std::vector<std::unique_ptr<Backend>> slots) {
  if (dispatch.max_batch_size != cost_->max_batch_size()) {
    return InvalidArgument("model '" + model_ + "': max_batch_size " +
                           std::to_string(cost_->max_batch_size()) +
                           " cannot change while the model runs (" +
                           std::to_string(dispatch.max_batch_size) + " asked)");
  }
  dispatch.queue = queue_.get();
  dispatch.cost_model = cost_.get();
  dispatch.observer = this;
  dispatch.executor = executor_;
  return DispatchGroup::Create(dispatch, std::move(slots));
}

void ModelScheduler::Replace(std::unique_ptr<DispatchGroup> next_group) {
  std::shared_ptr<DispatchGroup> next(std::move(next_group));
  std::shared_ptr<DispatchGroup> old;
  {
    // Read before Retire() (which takes every slot of `old` out); no
    // switch lands in between.
    std::lock_guard devices(devices_mu_);
    for (const size_t s : SlotsStillOutOfService(*group(), *next)) next->SetSlotEnabled(s, false);
    old = group_.exchange(next);
  }
  next->CarryOverLoad(*old);
  {
    std::lock_guard lock(retired_mu_);
    retired_.push_back(old);
  }
  // Both apply on the executor, in this order: the queue's wake-up is the
  // new group's from then on. The groups die before the scheduler.
  old->Retire([this](std::vector<RequestPtr> batch) { group()->Submit(std::move(batch)); });
  if (started_.load()) next->Start();
  if (admission_) admission_->SetTotalSlots(next->slot_count());
  SyncAdmission();
  old.reset();  // retired_ holds it alone now, unless a reader still does
  executor_->Post([weak = std::weak_ptr<ModelScheduler*>(alive_)] {
    if (auto self = weak.lock()) (*self)->PruneRetired();
  });
}

void ModelScheduler::PruneRetired() {
  std::vector<std::shared_ptr<DispatchGroup>> done;
  {
    std::lock_guard lock(retired_mu_);
    // Nobody else holds it: nothing can reach it again.
    auto finished = std::stable_partition(retired_.begin(), retired_.end(), [](const auto& g) {
      return !(g->drained() && g.use_count() == 1);
    });
    done.assign(std::make_move_iterator(finished), std::make_move_iterator(retired_.end()));
    retired_.erase(finished, retired_.end());
  }
  // `done` goes here, on the executor: none of its callbacks runs now.
}

size_t ModelScheduler::busy_slots() const {
  size_t busy = group()->busy_slots();
  std::lock_guard lock(retired_mu_);
  for (const auto& g : retired_) busy += g->busy_slots();
  return busy;
}

void ModelScheduler::AbortInFlight(Status status) {
  group()->AbortInFlight(status);
  std::lock_guard lock(retired_mu_);
  for (const auto& g : retired_) g->AbortInFlight(status);
}

ModelScheduler::~ModelScheduler() {
  alive_.reset();
  if (scaling_timer_ != 0) executor_->Cancel(scaling_timer_);
}

void ModelScheduler::Start() {
  if (started_.exchange(true)) return;
  group()->Start();
  executor_->Post([weak = std::weak_ptr<ModelScheduler*>(alive_)] {
    if (auto self = weak.lock()) (*self)->ArmScalingTick();
  });
}

void ModelScheduler::ArmScalingTick() {
  scaling_timer_ = executor_->RunAt(executor_->clock().Now() + std::chrono::seconds(1),
                                    [weak = std::weak_ptr<ModelScheduler*>(alive_)] {
                                      auto self = weak.lock();
                                      if (!self) return;
                                      ModelScheduler* s = *self;
                                      s->scaling_timer_ = 0;
                                      const double arrivals =
                                          s->admission_ ? s->admission_->Snapshot().arrival_rps : 0;
                                      s->scaling_->Update(arrivals, s->cost_->FullBatchRps());
                                      // A retired group a reader held at its last batch.
                                      s->PruneRetired();
                                      s->ArmScalingTick();
                                    });
}

Status ModelScheduler::SetDeviceEnabled(size_t index, bool enabled) {
  std::unique_lock devices(devices_mu_);
  const std::shared_ptr<DispatchGroup> group = this->group();
  const bool known = group->SetSlotEnabled(index, enabled);
  devices.unlock();
  if (!known) {
    return NotFound("model '" + model_ + "' has no device " + std::to_string(index) +
                    " (devices: " + std::to_string(group->slot_count()) + ")");
  }
  SyncAdmission();
  return Status::Ok();
}

void ModelScheduler::SyncAdmission() {
  if (!admission_) return;
  std::lock_guard lock(sync_mu_);
  const std::shared_ptr<DispatchGroup> group = this->group();
  admission_->SetSlots(
      {group->available_slots(), group->probing_endpoints(), group->next_probe_at()});
}

void ModelScheduler::OnBatchDone(size_t slot, size_t batch_size,
                                 SteadyClock::duration accelerator_time, bool ok) {
  if (observer_) observer_->OnBatchDone(slot, batch_size, accelerator_time, ok);
  bool retiring = false;
  {
    std::lock_guard lock(retired_mu_);
    retiring = !retired_.empty();
  }
  // Not here: the group that called is still running.
  if (retiring) {
    executor_->Post([weak = std::weak_ptr<ModelScheduler*>(alive_)] {
      if (auto self = weak.lock()) (*self)->PruneRetired();
    });
  }
}

void ModelScheduler::OnRetry(size_t slot, size_t requests) {
  if (observer_) observer_->OnRetry(slot, requests);
}

void ModelScheduler::OnDeadLetter(size_t requests) {
  if (observer_) observer_->OnDeadLetter(requests);
}

void ModelScheduler::OnBreakerChange(size_t endpoint, const std::string& name, BreakerState state) {
  SyncAdmission();
  if (observer_) observer_->OnBreakerChange(endpoint, name, state);
}

}  // namespace sluice
