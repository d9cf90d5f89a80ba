// RedisDeadLetters: the dead letters of every gateway and worker, kept in
// Redis (one capped list per model, keys.h) so that any gateway serves them
// on GET /internal/dead-letters.
//
// Two writers share each list: a worker's dispatch group pushes the
// requests whose retries ran out (Push, from its DeadLetterQueue's on_add),
// and the reaper pushes requests whose worker stopped renewing their lease
// past the retry budget (scripts.h, Reap). Entries are JSON:
//   worker: {"id","model","key","tier","input","input_truncated","attempts",
//            "error","backend","at_us"}
//   reaper: {"id","model","gw","attempts","reason":"lease_expired","at_us",
//            "request":{the queued payload, request_codec.h}}
// ReadNewest() reads every model's list (one script call each, pipelined),
// decodes both forms into DeadLetter and merges them newest first; entries
// that do not decode are skipped (counted in undecodable()).
//
// Thread-safety: thread-safe. Ownership: `connection` is not owned and must
// outlive this object and every callback. Blocking: never.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/dead_letter_queue.h"
#include "redis/client.h"
#include "redis/keys.h"

namespace sluice::redis {

class RedisDeadLetters final : public DeadLetterSource {
 public:
  struct Options {
    RedisClient* connection = nullptr;  // required; not owned
    KeySpace keys;
    std::vector<std::string> models;  // the lists ReadNewest() reads; valid key parts
    size_t capacity = 1'000;          // entries kept per model (Push); >= 1
    // Shards of each model's queue: the reaper's dead letters go to their
    // shard's list, so ReadNewest() reads every shard's; 1..64.
    size_t queue_shards = 1;
  };

  // Errors: kInvalidArgument naming the field.
  static Result<std::unique_ptr<RedisDeadLetters>> Create(const Options& options);

  // Appends `letter` to its model's list (asynchronous; a failure is
  // counted in push_errors(), the local queue still has the entry).
  void Push(const DeadLetter& letter);

  void ReadNewest(size_t limit, PageDone done) const override;

  uint64_t push_errors() const { return counters_->push_errors.load(std::memory_order_relaxed); }
  uint64_t undecodable() const { return counters_->undecodable.load(std::memory_order_relaxed); }

 private:
  struct Counters {
    std::atomic<uint64_t> push_errors{0};
    std::atomic<uint64_t> undecodable{0};
  };
  explicit RedisDeadLetters(const Options& options) : options_(options) {}

  const Options options_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

// The JSON a worker pushes for `letter` (exposed for tests).
std::string EncodeDeadLetter(const DeadLetter& letter);
// Either form above; kInvalidArgument when it is neither.
Result<DeadLetter> DecodeDeadLetter(std::string_view json);

}  // namespace sluice::redis
