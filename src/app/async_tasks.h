// AsyncTasks: the task store (the asynchronous API and Idempotency-Key
// answers, `async:` in the config) and its metrics: in this process's
// memory for `serve` (Create), or one built by the caller (Adopt: a
// gateway's, in Redis, so that any gateway answers a poll).
//
// Metrics: sluice_async_tasks_created_total, sluice_async_tasks_completed_total
// and sluice_async_tasks_pending (an adopted store: what it reports, a
// gateway its own tasks); in memory also sluice_async_tasks_expired_total,
// sluice_async_tasks_evicted_total, sluice_async_tasks_stored and
// sluice_async_task_bytes; and what AddMetric() adds.
//
// Thread-safe after Create(). The registry and the executor must outlive
// this object; the destructor removes the metrics.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "core/task_store.h"
#include "metrics/registry.h"

namespace sluice {

class AsyncTasks {
 public:
  // `executor` runs the long polls' timers. Errors: kInvalidArgument
  // naming the `async.` field.
  static Result<std::unique_ptr<AsyncTasks>> Create(const AsyncConfig& config, Executor* executor,
                                                    metrics::Registry* registry);
  // Owns `store` and adds its counts' metrics.
  static std::unique_ptr<AsyncTasks> Adopt(std::unique_ptr<TaskStore> store,
                                           metrics::Registry* registry);
  ~AsyncTasks();

  AsyncTasks(const AsyncTasks&) = delete;
  AsyncTasks& operator=(const AsyncTasks&) = delete;

  TaskStore* store() const { return store_.get(); }
  // A gauge, or a counter when `counter`, removed with this object; `read`
  // may read the store.
  void AddMetric(const char* name, const char* help, bool counter, std::function<double()> read);

 private:
  explicit AsyncTasks(metrics::Registry* registry) : registry_(registry) {}
  void AddCounts();

  metrics::Registry* registry_;
  std::unique_ptr<TaskStore> store_;
  std::vector<const char*> metric_names_;
};

}  // namespace sluice
