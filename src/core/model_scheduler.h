// ModelScheduler: the scheduling brain of ONE model, composed once so that
// `sluice serve`, `sluice worker` and `sluice simulate` run the same rules:
// its queue (MemoryQueue), its learnt batch cost (BatchCostModel), its
// admission (AdmissionController, optional) and its dispatchers
// (DispatchGroup, one per accelerator slot). It keeps them in step: every
// successful batch feeds the cost model that admission and adaptive
// batching read, and every breaker change or device switch reaches
// admission at once (healthy slots, probing endpoints, next probe time).
// Once a second (on the executor) it also feeds the model's ScalingAdvisor
// with admission's arrival rate and the learnt per-device throughput: the
// recommended device count (min_devices when admission is off).
//
// Replacing the group. A reload that changes the model's backends or its
// batching builds a new group (NewGroup()) and installs it (Replace()): it
// pulls from the same queue with the same learnt cost, and starts at the
// measured load; the old one retires (DispatchGroup::Retire): its batches
// in flight finish on their backends, what waited there for a retry runs
// on the new one, and it is destroyed on the executor, its backends (and
// their connections) with it, after its last batch ended (or, if a reader
// of group() still held it then, within a second). A device an operator
// took out of service stays out in the new group when the new group has
// it: a slot of an endpoint of the same name, at the same rank among that
// endpoint's slots (a sim's device i, an HTTP endpoint's i-th connection).
// The new group's breakers start closed.
//
// Threading: as DispatchGroup — all scheduling state lives on
// Options::dispatch.executor; the accessors and SetDeviceEnabled() are
// thread-safe. Destroy it only once the executor runs none of its
// callbacks (e.g. after the io_context stopped). Ownership: owns the
// queue, the cost model, the controller and the groups, the current one and
// the retired ones (and through them the backends); every pointer in
// Options is borrowed and must outlive the scheduler.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/dispatch_group.h"
#include "core/memory_queue.h"
#include "limits/admission_controller.h"
#include "limits/batch_cost_model.h"
#include "limits/scaling_advisor.h"

namespace sluice {

class ModelScheduler final : private DispatchObserver {
 public:
  struct Options {
    MemoryQueue::Options queue;
    // The group's options. `queue`, `observer` and `cost_model` are set by
    // the scheduler; `executor` and `router` are required.
    DispatchGroup::Options dispatch;
    // Prior of the cost model; max_batch_size and clock are taken from
    // `dispatch`.
    BatchCostModel::Options cost;
    // Admission; unset = every request that fits the queue is queued.
    // `total_slots`, `cost_model` and `clock` are set by the scheduler.
    std::optional<AdmissionController::Options> admission;
    // Recommended devices; `clock` is set by the scheduler.
    ScalingAdvisor::Options scaling;
    // Optional; not owned. Sees every group event (metrics), on the executor.
    DispatchObserver* observer = nullptr;
  };
  ~ModelScheduler();

  // Errors: kInvalidArgument from any part's validation.
  static Result<std::unique_ptr<ModelScheduler>> Create(
      Options options, std::vector<std::unique_ptr<Backend>> slots);

  // Starts the dispatchers and the scaling updates. Thread-safe; a second
  // call does nothing.
  void Start();

  RequestQueue* queue() { return queue_.get(); }
  // The model's group now (Replace() may install another: hold it only as
  // long as a call needs it). Any thread.
  std::shared_ptr<DispatchGroup> group() const { return group_.load(); }
  BatchCostModel& cost_model() { return *cost_; }
  // Null when admission is off.
  AdmissionController* admission() { return admission_.get(); }
  const ScalingAdvisor& scaling() const { return *scaling_; }
  ScalingAdvisor& scaling() { return *scaling_; }

  // Takes slot `index` out of service or back; admission follows at once.
  // Thread-safe, and ordered with Replace(): a switch lands on the group
  // in force, or on the old one and is carried over. kNotFound for an
  // unknown index.
  Status SetDeviceEnabled(size_t index, bool enabled);

  // A group for this model's queue and cost model, from `dispatch` (as
  // Options::dispatch: its queue, observer and cost model are the
  // scheduler's) on `slots`; not started. Errors: kInvalidArgument from
  // its validation, or a max_batch_size other than the model's (the cost
  // model and admission are sized by it). Thread-safe.
  Result<std::unique_ptr<DispatchGroup>> NewGroup(DispatchGroup::Options dispatch,
                                                  std::vector<std::unique_ptr<Backend>> slots);
  // Installs `next` (from NewGroup()) as the model's group and retires the
  // one it replaces (see "Replacing the group"). group() returns `next` at
  // once. Thread-safe; the hand-over completes on the executor.
  void Replace(std::unique_ptr<DispatchGroup> next);

  // Slots with a batch in flight, in the group and in retired ones still
  // finishing theirs (any thread; a snapshot).
  size_t busy_slots() const;
  // DispatchGroup::AbortInFlight() on the group and on every retired one
  // (shutdown). Thread-safe.
  void AbortInFlight(Status status);

 private:
  ModelScheduler() = default;
  void SyncAdmission();   // admission's slots from the group's
  void ArmScalingTick();  // the once-a-second ScalingAdvisor update
  // Destroys the retired groups that are drained and held by nobody else.
  // On the executor only (a group is destroyed where its callbacks run).
  void PruneRetired();

  // DispatchObserver: forwarded to Options::observer.
  void OnBatchDone(size_t slot, size_t batch_size, SteadyClock::duration accelerator_time,
                   bool ok) override;
  void OnRetry(size_t slot, size_t requests) override;
  void OnDeadLetter(size_t requests) override;
  void OnBreakerChange(size_t endpoint, const std::string& name, BreakerState state) override;

  std::string model_;
  DispatchObserver* observer_ = nullptr;
  std::unique_ptr<MemoryQueue> queue_;
  std::unique_ptr<BatchCostModel> cost_;
  std::unique_ptr<AdmissionController> admission_;
  std::atomic<std::shared_ptr<DispatchGroup>> group_;
  mutable std::mutex retired_mu_;
  std::vector<std::shared_ptr<DispatchGroup>> retired_;  // GUARDED_BY(retired_mu_)
  std::unique_ptr<ScalingAdvisor> scaling_;
  Executor* executor_ = nullptr;
  Executor::TimerId scaling_timer_ = 0;  // on the executor
  std::atomic<bool> started_{false};
  std::shared_ptr<ModelScheduler*> alive_;  // liveness token for the timer
  std::mutex sync_mu_;     // orders admission updates from the strand and admin calls
  std::mutex devices_mu_;  // orders SetDeviceEnabled() with Replace()'s carry-over
};

}  // namespace sluice
