// MemoryTaskStore: a TaskStore in this process's memory (`sluice serve`).
//
// A completed task is kept result_ttl_ms after its completion, and the
// completed tasks together within max_bytes: the oldest completed ones go
// first (counted as evicted; those past their time, as expired). A task
// counts its id, owner, output, version and error text plus
// kTaskOverheadBytes (and its Idempotency-Key and digest). At most
// max_pending tasks wait for their answer at once, and at most
// kMaxWaitersPerTask long polls wait for one task. An Idempotency-Key goes
// with its task.
//
// Thread-safe: one mutex, never held while a callback runs. Await()'s
// timers run on the executor, which must outlive the store; the destructor
// cancels them (their callers are not answered). Times come from the
// executor's clock.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/task_store.h"

namespace sluice {

class MemoryTaskStore final : public TaskStore {
 public:
  // Bytes counted per task on top of its strings (map and list nodes,
  // string headers).
  static constexpr uint64_t kTaskOverheadBytes = 256;
  // The longest result_ttl_ms: 30 days (time arithmetic stays far from overflow).
  static constexpr int64_t kMaxTtlMs = 30ll * 24 * 3'600'000;
  // Long polls waiting for one task; more are answered at once.
  static constexpr size_t kMaxWaitersPerTask = 16;

  struct Options {
    int64_t result_ttl_ms = 600'000;    // a completed task's life; 1..kMaxTtlMs
    uint64_t max_bytes = 256ull << 20;  // completed tasks' memory; >= 1
    size_t max_pending = 100'000;       // tasks waiting for an answer at once; >= 1
    Executor* executor = nullptr;       // required: Await() timers and the clock; not owned
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<MemoryTaskStore>> Create(const Options& options);
  ~MemoryTaskStore() override;

  Status Create(const std::string& id, const std::string& owner) override;
  void Complete(const std::string& id, TaskAnswer answer) override;
  std::optional<TaskView> Get(const std::string& id, const std::string& owner) override;
  void Await(const std::string& id, const std::string& owner, TimePoint until, AwaitFn fn) override;
  Result<Reservation> Reserve(const std::string& owner, const std::string& key,
                              const std::string& digest, const std::string& new_task_id) override;
  void Discard(const std::string& id) override;
  Stats stats() const override;

 private:
  struct Waiter {
    uint64_t id = 0;
    AwaitFn fn;
    Executor::TimerId timer = 0;
  };
  struct Task {
    std::string owner;
    bool done = false;
    TaskAnswer answer;
    TimePoint expires;                          // when done
    uint64_t bytes = 0;                         // when done
    std::list<std::string>::iterator in_order;  // in done_order_, when done
    std::vector<Waiter> waiters;
    std::string reservation;  // its key in reservations_, or empty
  };
  struct Reserved {
    std::string digest;
    std::string task_id;
  };

  explicit MemoryTaskStore(const Options& options) : options_(options) {}

  // Drops completed tasks past their time, then the oldest until within
  // the budget. REQUIRES: mu_ held.
  void TrimLocked(TimePoint now);
  void EraseDoneLocked(std::unordered_map<std::string, Task>::iterator it);
  // The task if `owner` owns it. REQUIRES: mu_ held.
  Task* FindLocked(const std::string& id, const std::string& owner);
  // Create() with mu_ held.
  Status CreateLocked(const std::string& id, const std::string& owner);
  static TaskView View(const std::string& id, const Task& task);
  void OnWaitTimeout(const std::string& id, uint64_t waiter);

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Task> tasks_;             // guarded by mu_
  std::list<std::string> done_order_;                       // oldest completion first; mu_
  std::unordered_map<std::string, Reserved> reservations_;  // owner '\n' key; mu_
  uint64_t next_waiter_ = 1;                                // guarded by mu_
  Stats stats_;                                             // guarded by mu_
};

}  // namespace sluice
