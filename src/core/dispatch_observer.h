// DispatchObserver: what a DispatchGroup (core/dispatch_group.h) reports
// about its batches, slots and breakers, for metrics and logs.
#pragma once

#include <cstddef>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "core/circuit_breaker.h"

namespace sluice {

// Hooks for metrics; called on the group's executor. Default: no-ops.
class DispatchObserver {
 public:
  virtual ~DispatchObserver() = default;
  // A batch finished (or failed) on `slot` after `accelerator_time`.
  virtual void OnBatchDone(size_t /*slot*/, size_t /*batch_size*/,
                           SteadyClock::duration /*accelerator_time*/, bool /*ok*/) {}
  // The batch on `slot` failed as a whole (error, wrong-length reply or
  // accelerator timeout). `error` is internal: the backend's name and its
  // own text, for the operator's log, never for clients. Once per failed
  // batch; a logging implementation should rate-limit.
  virtual void OnBatchFailed(size_t /*slot*/, const Status& /*error*/) {}
  // `requests` of a failed batch on `slot` will be retried.
  virtual void OnRetry(size_t /*slot*/, size_t /*requests*/) {}
  // `requests` exhausted their retries and went to the dead-letter queue.
  virtual void OnDeadLetter(size_t /*requests*/) {}
  // Endpoint `endpoint` (its index in the group; `name`, its URL or
  // backend name)'s breaker changed to `state`; available_slots() already
  // reflects it. A group reports none once its retirement is applied.
  virtual void OnBreakerChange(size_t /*endpoint*/, const std::string& /*name*/,
                               BreakerState /*state*/) {}
};

}  // namespace sluice
