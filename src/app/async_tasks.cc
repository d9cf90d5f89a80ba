#include "app/async_tasks.h"

#include "core/memory_task_store.h"

namespace sluice {
namespace {

struct Series {
  const char* name;
  const char* help;
  uint64_t TaskStore::Stats::*field;
  bool counter = false;  // a total that never decreases
};

// Every store's.
constexpr Series kCounts[] = {
    {"sluice_async_tasks_created_total", "Tasks registered (async requests and Idempotency-Keys).",
     &TaskStore::Stats::created, true},
    {"sluice_async_tasks_completed_total", "Tasks answered.", &TaskStore::Stats::completed, true},
    {"sluice_async_tasks_pending", "Tasks waiting for their answer.", &TaskStore::Stats::pending},
};

// What only a store in memory knows (in Redis, Redis keeps and expires).
constexpr Series kMemory[] = {
    {"sluice_async_tasks_expired_total", "Answered tasks dropped after async.result_ttl_ms.",
     &TaskStore::Stats::expired, true},
    {"sluice_async_tasks_evicted_total",
     "Answered tasks dropped early to stay within async.max_bytes (oldest first).",
     &TaskStore::Stats::evicted, true},
    {"sluice_async_tasks_stored", "Answered tasks kept for their owners.",
     &TaskStore::Stats::stored},
    {"sluice_async_task_bytes", "Bytes the answered tasks hold, as async.max_bytes counts them.",
     &TaskStore::Stats::bytes},
};

}  // namespace

void AsyncTasks::AddMetric(const char* name, const char* help, bool counter,
                           std::function<double()> read) {
  if (counter) {
    registry_->AddCallbackCounter(name, help, {}, std::move(read));
  } else {
    registry_->AddCallbackGauge(name, help, {}, std::move(read));
  }
  metric_names_.push_back(name);
}

Result<std::unique_ptr<AsyncTasks>> AsyncTasks::Create(const AsyncConfig& config,
                                                       Executor* executor,
                                                       metrics::Registry* registry) {
  MemoryTaskStore::Options o;
  o.result_ttl_ms = config.result_ttl_ms;
  o.max_bytes = config.max_bytes;
  o.max_pending = static_cast<size_t>(config.max_pending);
  o.executor = executor;
  auto store = MemoryTaskStore::Create(o);
  if (!store.ok()) return InvalidArgument("async." + store.status().message());
  std::unique_ptr<AsyncTasks> out(new AsyncTasks(registry));
  out->store_ = std::move(store).value();
  out->AddCounts();
  for (const Series& series : kMemory) {
    out->AddMetric(series.name, series.help, series.counter,
                   [s = out->store_.get(), field = series.field] {
                     return static_cast<double>(s->stats().*field);
                   });
  }
  return out;
}

std::unique_ptr<AsyncTasks> AsyncTasks::Adopt(std::unique_ptr<TaskStore> store,
                                              metrics::Registry* registry) {
  std::unique_ptr<AsyncTasks> out(new AsyncTasks(registry));
  out->store_ = std::move(store);
  out->AddCounts();
  return out;
}

void AsyncTasks::AddCounts() {
  for (const Series& series : kCounts) {
    AddMetric(series.name, series.help, series.counter, [s = store_.get(), field = series.field] {
      return static_cast<double>(s->stats().*field);
    });
  }
}

AsyncTasks::~AsyncTasks() {
  for (const char* name : metric_names_) registry_->RemoveCallback(name, {});
}

}  // namespace sluice
