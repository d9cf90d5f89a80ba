// TaskStore: the tasks of the asynchronous API and the Idempotency-Key
// reservations.
//
// A task is a request whose answer is read later: submitted with `Prefer:
// respond-async` (or "async": true) and read with GET /v1/result/{task_id},
// or sent with an Idempotency-Key, whose repeats get the first answer. It is
// created pending when its request is admitted and completed once with the
// answer. Only the API key that submitted it (its owner) can read it: for
// any other key it does not exist. A completed task is kept for a while
// within a memory budget (see the implementation); a pending one until it
// completes (in Redis, at most a bounded time: its gateway may stop first).
//
// Implementations are thread-safe and never block beyond their own bounded
// timeouts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace sluice {

// A task's answer: what the synchronous API would have answered.
struct TaskAnswer {
  int http_status = 200;
  // 200: the output and its metadata.
  std::string output;
  uint32_t tokens_used = 0;
  int64_t latency_ms = 0;  // submission to answer
  std::string model_version;
  bool cached = false;
  bool collapsed = false;
  // Otherwise: the error (its code name, client-safe message and reason).
  std::string error_code;
  std::string error_message;
  std::string error_reason;  // empty: none
};

// A task as its owner sees it.
struct TaskView {
  std::string id;
  bool done = false;
  TaskAnswer answer;  // when done
};

class TaskStore {
 public:
  struct Stats {
    uint64_t created = 0;    // tasks registered
    uint64_t completed = 0;  // tasks answered
    uint64_t expired = 0;    // completed tasks dropped after their time to live
    uint64_t evicted = 0;    // completed tasks dropped early to stay within the byte budget
    uint64_t pending = 0;    // waiting for their answer now
    uint64_t stored = 0;     // answered and kept now
    uint64_t bytes = 0;      // kept now, as the budget counts them
  };

  // What Reserve() found for an Idempotency-Key.
  struct Reservation {
    enum class Kind {
      kNew,       // reserved for the new task: run it
      kExisting,  // the same request came before: task_id is its task
      kConflict,  // the key was used for a different request: 422
    };
    Kind kind = Kind::kNew;
    std::string task_id;
  };

  using AwaitFn = std::function<void(std::optional<TaskView>)>;

  virtual ~TaskStore() = default;

  // Registers pending task `id` owned by `owner` (an API key id). Errors:
  // kUnavailable when too many tasks are pending.
  virtual Status Create(const std::string& id, const std::string& owner) = 0;
  // Create() without waiting for a store elsewhere: `done` gets its status
  // exactly once, inline or later on another thread (a store's I/O thread,
  // where it must not block). The default runs Create() inline.
  virtual void CreateAsync(const std::string& id, const std::string& owner,
                           std::function<void(Status)> done) {
    done(Create(id, owner));
  }

  // Completes task `id` once (later calls, and unknown ids, do nothing) and
  // answers its Await() callers.
  virtual void Complete(const std::string& id, TaskAnswer answer) = 0;

  // Task `id` as `owner` sees it: nullopt when unknown, expired or owned by
  // another key.
  virtual std::optional<TaskView> Get(const std::string& id, const std::string& owner) = 0;

  // As Get(), but a pending task is waited for until it completes or
  // `until` passes: `fn` runs exactly once, inline when there is nothing to
  // wait for (or already too many wait for the task: it is answered as it
  // is), else on the completing thread or the store's executor.
  virtual void Await(const std::string& id, const std::string& owner, TimePoint until,
                     AwaitFn fn) = 0;

  // The task an Idempotency-Key stands for. The key is the owner's: `key`
  // of one owner never meets another's. `digest` identifies the request
  // (the same body gives the same digest). kNew creates pending task
  // `new_task_id` for the key at once (as Create(), so a repeat arriving
  // meanwhile finds it); the caller runs it, or Discard()s it. The key is
  // kept as long as that task. Errors: as Create().
  virtual Result<Reservation> Reserve(const std::string& owner, const std::string& key,
                                      const std::string& digest,
                                      const std::string& new_task_id) = 0;
  // Forgets task `id`, pending or not, and its Idempotency-Key: its request
  // was refused, so nobody will read it and a retry with the same key runs.
  // Its Await() callers get nullopt. A pending task discarded is no longer
  // counted as created.
  virtual void Discard(const std::string& id) = 0;

  virtual Stats stats() const = 0;
};

}  // namespace sluice
