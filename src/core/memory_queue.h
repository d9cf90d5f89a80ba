// MemoryQueue: the in-process RequestQueue.
//
// One binary heap per tier keyed by (dispatch deadline, seq); EDF mode takes
// the smallest deadline among the tier heads (ties: higher tier priority),
// strict mode the head of the highest-priority non-empty tier. Push and pop
// are O(log n). OldestArrival() is the oldest arrival among the tier heads:
// exact unless a client shortened its deadline, in which case a slightly
// younger request may be reported. Thread-safe behind one mutex.
#pragma once

#include <mutex>
#include <vector>

#include "core/request_queue.h"
#include "core/tier.h"

namespace sluice {

class MemoryQueue final : public RequestQueue {
 public:
  struct Options {
    size_t capacity = 10'000;  // max queued requests; Push fails beyond
    QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst;
    std::vector<TierPolicy> tiers;  // indexed by Principal::tier; non-empty
  };

  static Result<std::unique_ptr<MemoryQueue>> Create(const Options& options);

  Status Push(RequestPtr req) override;
  void PopBatch(size_t max, TimePoint now, std::vector<RequestPtr>* batch,
                std::vector<RequestPtr>* dropped) override;
  void RemoveExpired(TimePoint now, std::vector<RequestPtr>* expired) override;
  void RemoveAll(std::vector<RequestPtr>* out) override;
  size_t Depth() const override;
  size_t QueuedAhead(TierIndex tier, TimePoint deadline) const override;
  std::optional<TimePoint> OldestArrival() const override;
  std::optional<TimePoint> EarliestDeadline() const override;
  bool NotifyAtDepth(size_t min_depth, std::function<void()> fn) override;
  void ClearNotify() override;

 private:
  explicit MemoryQueue(const Options& options);

  struct Entry {
    TimePoint deadline;
    uint64_t seq;
    RequestPtr req;
  };
  struct Later {  // min-heap on (deadline, seq)
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
    }
  };

  // Index of the tier whose head goes next, or -1 when empty. REQUIRES: mu_.
  int NextTier() const;
  Entry PopFrom(int tier);  // REQUIRES: mu_, tier non-empty

  const Options options_;
  std::vector<int> tiers_by_priority_;  // tier indexes, highest priority first

  mutable std::mutex mu_;
  std::vector<std::vector<Entry>> heaps_;  // GUARDED_BY(mu_), one per tier
  size_t depth_ = 0;                       // GUARDED_BY(mu_)
  uint64_t next_seq_ = 1;                  // GUARDED_BY(mu_)
  size_t notify_depth_ = 0;                // GUARDED_BY(mu_); 0 = none
  std::function<void()> notify_fn_;        // GUARDED_BY(mu_)
};

}  // namespace sluice
