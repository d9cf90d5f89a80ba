// AsyncTasks: `serve`'s task store (the asynchronous API and Idempotency-Key
// answers, `async:` in the config), in this process's memory, and its
// metrics. (A gateway keeps no tasks yet: they would have to live in Redis
// for any gateway to answer a poll.)
//
// Metrics: sluice_async_tasks_created_total, sluice_async_tasks_completed_total,
// sluice_async_tasks_expired_total, sluice_async_tasks_evicted_total,
// sluice_async_tasks_pending, sluice_async_tasks_stored and
// sluice_async_task_bytes.
//
// Thread-safe after Create(). The registry and the executor must outlive
// this object; the destructor removes the metrics.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "core/memory_task_store.h"
#include "metrics/registry.h"

namespace sluice {

class AsyncTasks {
 public:
  // `executor` runs the long polls' timers. Errors: kInvalidArgument
  // naming the `async.` field.
  static Result<std::unique_ptr<AsyncTasks>> Create(const AsyncConfig& config, Executor* executor,
                                                    metrics::Registry* registry);
  ~AsyncTasks();

  AsyncTasks(const AsyncTasks&) = delete;
  AsyncTasks& operator=(const AsyncTasks&) = delete;

  TaskStore* store() const { return store_.get(); }

 private:
  explicit AsyncTasks(metrics::Registry* registry) : registry_(registry) {}

  metrics::Registry* registry_;
  std::unique_ptr<MemoryTaskStore> store_;
};

}  // namespace sluice
