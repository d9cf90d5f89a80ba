// MemoryRequestLog: the last `capacity` requests, in memory.
//
// A fixed ring of records allocated once. Ids made by NewRequestId() in this
// process land in slot (sequence % capacity), so admission needs no hash
// map and no allocation once the ring's strings have grown; other ids are
// placed by hash. A newer request overwrites the slot's older one, so memory
// stays bounded at `capacity` records. OnFinished() updates a record only
// while its slot still holds that same request: a finish after the slot was
// reused, or of another request with the same id, changes nothing (the
// newer record is never shadowed). Slots are guarded by 64 striped
// mutexes, so I/O threads rarely contend. While a request is in flight its
// stage is read from the live request (queued / processing).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <vector>

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
  static constexpr size_t kStripes = 64;
  struct Slot {
    RequestRecord record;                  // record.id empty = unused
    std::weak_ptr<InferenceRequest> live;  // expires once finished
  };
  explicit MemoryRequestLog(const Options& options) : slots_(options.capacity) {}
  size_t SlotFor(const std::string& id) const;

  std::vector<Slot> slots_;  // GUARDED_BY(stripes_[i % kStripes])
  mutable std::array<std::mutex, kStripes> stripes_;
};

}  // namespace sluice
