// RedisTaskStore: a TaskStore in Redis (`sluice gateway`, and `serve` with a
// `redis:` section), so that any gateway answers a poll for a task another
// gateway took, and an Idempotency-Key repeated at another gateway finds
// its first request's task.
//
// Keys (keys.h): a task is one string, sluice:task:{owner}:<id>, holding
// "P" owner "\n" while pending and "D" owner "\n" answer-JSON once done; an
// Idempotency-Key is sluice:idem:{owner}:<SHA-256 of the key>, holding the
// request's digest, "|", its task id. Both share the owner's hash tag, so
// the reservation script touches one slot. A pending task lives at most
// pending_ttl_ms (its gateway may die before the answer), a completed one
// result_ttl_ms after its completion; its Idempotency-Key goes with it.
// Redis bounds them by time; the memory they take is Redis's (size its
// maxmemory for the rate times result_ttl_ms).
//
// Where work happens: the gateway that took a task completes it (its
// answer arrives there), so Complete() and Discard() act on tasks created
// here and ignore others. Create(), Reserve() and Get() wait one round
// trip (the 202 must not reach a client before the task is readable
// everywhere); Discard() of a task with an Idempotency-Key too (a retry
// must find the key gone). Complete() writes without waiting and answers
// this gateway's long polls at once. Await() on a task taken here waits
// for its Complete(); on another gateway's it reads the task every
// poll_interval_ms until done or `until`. At most max_pending tasks taken
// here wait for an answer at once; at most kMaxWaitersPerTask long polls
// wait for one local task, kMaxRemotePolls for other gateways' tasks.
//
// A store that fails (Redis down or not answering): Create()/Reserve()
// answer kUnavailable (and then delete what the call may have written, if
// it is still pending: a retry with the same Idempotency-Key must run),
// Get()/Await() nullopt (unknown), Complete() counts the lost write
// (write_errors()) and logs it; the task then reads pending until it
// expires. With max_pending tasks pending, Reserve() still finds a repeat.
//
// Stats: created, completed and pending count this gateway's tasks;
// expired, evicted, stored and bytes are Redis's and stay 0.
//
// Thread-safe. `connection` and `executor` must outlive the store; the
// destructor cancels the long polls' timers (their callers are not
// answered), and replies arriving later are dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/task_store.h"
#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

class RedisTaskStore final : public TaskStore {
 public:
  static constexpr int64_t kMaxTtlMs = 30ll * 24 * 3'600'000;  // 30 days
  static constexpr size_t kMaxWaitersPerTask = 16;
  static constexpr size_t kMaxRemotePolls = 10'000;

  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;
    int64_t result_ttl_ms = 600'000;   // a completed task's life; 1..kMaxTtlMs
    int64_t pending_ttl_ms = 900'000;  // a pending task's longest life; 1..kMaxTtlMs
    size_t max_pending = 100'000;      // tasks taken here waiting at once; >= 1
    int64_t poll_interval_ms = 25;     // another gateway's task, re-read every; 1..10000
    Executor* executor = nullptr;      // required: timers and the clock; not owned
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisTaskStore>> Create(const Options& options);
  ~RedisTaskStore() override;

  // Waits one round trip; CreateAsync() does not (`done` runs on the
  // connection's thread, or inline when refused at once).
  Status Create(const std::string& id, const std::string& owner) override;
  void CreateAsync(const std::string& id, const std::string& owner,
                   std::function<void(Status)> done) override;
  void Complete(const std::string& id, TaskAnswer answer) override;
  std::optional<TaskView> Get(const std::string& id, const std::string& owner) override;
  void Await(const std::string& id, const std::string& owner, TimePoint until, AwaitFn fn) override;
  Result<Reservation> Reserve(const std::string& owner, const std::string& key,
                              const std::string& digest, const std::string& new_task_id) override;
  void Discard(const std::string& id) override;
  Stats stats() const override;

  // Completed tasks whose write to Redis failed.
  uint64_t write_errors() const;

 private:
  struct Core;
  explicit RedisTaskStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  // Shared with the replies and timers in flight, which may outlive the store.
  std::shared_ptr<Core> core_;
};

// A task's stored form (see the file comment) and back. Parse: nullopt
// when `value` is not a task's. Exposed for tests.
std::string EncodeStoredTask(const std::string& owner, const TaskAnswer* answer);
struct StoredTask {
  std::string owner;
  bool done = false;
  TaskAnswer answer;
};
std::optional<StoredTask> ParseStoredTask(std::string_view value);

}  // namespace sluice::redis
