// MemoryRequestLog: the last `capacity` requests, in memory.
//
// Sharded by id (16 shards, one mutex each) so that the front door's I/O
// threads rarely contend. Each shard evicts its oldest entry once full, so
// memory stays bounded at about `capacity` records. While a request is in
// flight its stage is read from the live request (queued / processing).
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/status.h"
#include "core/request_log.h"

namespace sluice {

class MemoryRequestLog final : public RequestLog {
 public:
  struct Options {
    size_t capacity = 100'000;  // records kept, >= 16
  };
  static Result<std::unique_ptr<MemoryRequestLog>> Create(const Options& options);

  void OnAdmitted(const RequestPtr& req) override;
  void OnFinished(const InferenceRequest& req, const InferenceOutcome& outcome,
                  double latency_ms) override;
  std::optional<RequestRecord> Lookup(const std::string& id) const override;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    RequestRecord record;
    std::weak_ptr<InferenceRequest> live;  // expires once finished
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;  // GUARDED_BY(mu)
    std::deque<std::string> order;                   // GUARDED_BY(mu), oldest first
  };
  explicit MemoryRequestLog(const Options& options) : per_shard_(options.capacity / kShards) {}
  Shard& ShardFor(const std::string& id) const;

  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace sluice
