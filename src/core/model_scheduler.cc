#include "core/model_scheduler.h"

namespace sluice {

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

  DispatchGroup::Options g = options.dispatch;
  g.queue = s->queue_.get();
  g.cost_model = s->cost_.get();
  g.observer = s.get();
  auto group = DispatchGroup::Create(g, std::move(slots));
  if (!group.ok()) return group.status();
  s->group_ = std::move(group).value();
  return s;
}

ModelScheduler::~ModelScheduler() {
  alive_.reset();
  if (scaling_timer_ != 0) executor_->Cancel(scaling_timer_);
}

void ModelScheduler::Start() {
  if (started_.exchange(true)) return;
  group_->Start();
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
                                      s->ArmScalingTick();
                                    });
}

Status ModelScheduler::SetDeviceEnabled(size_t index, bool enabled) {
  if (!group_->SetSlotEnabled(index, enabled)) {
    return NotFound("model '" + model_ + "' has no device " + std::to_string(index) +
                    " (devices: " + std::to_string(group_->slot_count()) + ")");
  }
  SyncAdmission();
  return Status::Ok();
}

void ModelScheduler::SyncAdmission() {
  if (!admission_) return;
  std::lock_guard lock(sync_mu_);
  admission_->SetSlots(
      {group_->available_slots(), group_->probing_endpoints(), group_->next_probe_at()});
}

void ModelScheduler::OnBatchDone(size_t slot, size_t batch_size,
                                 SteadyClock::duration accelerator_time, bool ok) {
  if (observer_) observer_->OnBatchDone(slot, batch_size, accelerator_time, ok);
}

void ModelScheduler::OnRetry(size_t slot, size_t requests) {
  if (observer_) observer_->OnRetry(slot, requests);
}

void ModelScheduler::OnDeadLetter(size_t requests) {
  if (observer_) observer_->OnDeadLetter(requests);
}

void ModelScheduler::OnBreakerChange(size_t endpoint, BreakerState state) {
  SyncAdmission();
  if (observer_) observer_->OnBreakerChange(endpoint, state);
}

}  // namespace sluice
