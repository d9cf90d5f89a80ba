// MemoryQueue: the in-process RequestQueue.
//
// One binary heap per tier keyed by (priority deadline, seq); EDF mode takes
// the smallest deadline among the tier heads (ties: higher tier priority),
// strict mode the head of the highest-priority non-empty tier. Push and pop
// are O(log n). A request whose client shortened its dispatch deadline keeps
// its place (the priority deadline is the tier's) and is also kept in a
// side heap ordered by its own deadline, so that RemoveExpired() finds it
// in O(log n) when that passes; its tier-heap entry is then skipped lazily.
// OldestArrival() is the oldest arrival among the tier heads.
// Thread-safe behind one mutex.
#pragma once

#include <mutex>
#include <unordered_set>
#include <vector>

#include "core/request_queue.h"
#include "core/tier.h"

namespace sluice {

class MemoryQueue final : public RequestQueue {
 public:
  struct Options {
    // Max queued synchronous requests; Push fails beyond. Asynchronous ones
    // wait behind them and are bounded by their task store's pending limit.
    size_t capacity = 10'000;
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
  size_t AsyncDepth() const override;
  size_t QueuedAhead(TierIndex tier, TimePoint deadline) const override;
  std::optional<TimePoint> OldestArrival() const override;
  std::optional<TimePoint> EarliestDeadline() const override;
  bool NotifyAtDepth(size_t min_depth, std::function<void()> fn) override;
  void ClearNotify() override;

 private:
  explicit MemoryQueue(const Options& options);

  struct Entry {
    TimePoint deadline;  // the order: priority deadline (tier heaps) or own deadline (side heap)
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
  // Removes tier `tier`'s head, which is queued (not expired early).
  // REQUIRES: mu_, tier non-empty.
  Entry PopFrom(int tier);
  // Drops tier heads already answered through the side heap, so that every
  // head is a queued request. REQUIRES: mu_.
  void SkipExpiredHeads();

  const Options options_;
  std::vector<int> tiers_by_priority_;  // tier indexes, highest priority first

  mutable std::mutex mu_;
  std::vector<std::vector<Entry>> heaps_;      // GUARDED_BY(mu_), one per tier
  std::vector<TimePoint> latest_;              // GUARDED_BY(mu_), latest priority deadline per tier
  std::vector<Entry> early_;                   // GUARDED_BY(mu_), side heap: shortened deadlines
  std::unordered_set<uint64_t> early_queued_;  // GUARDED_BY(mu_), seqs of early_ still queued
  std::unordered_set<uint64_t> early_expired_;  // GUARDED_BY(mu_), expired, still in a tier heap
  std::vector<size_t> expired_in_heap_;         // GUARDED_BY(mu_), early_expired_ per tier
  size_t depth_ = 0;                            // GUARDED_BY(mu_)
  size_t async_depth_ = 0;                      // GUARDED_BY(mu_), of depth_
  uint64_t next_seq_ = 1;                       // GUARDED_BY(mu_)
  size_t notify_depth_ = 0;                     // GUARDED_BY(mu_); 0 = none
  std::function<void()> notify_fn_;             // GUARDED_BY(mu_)
};

}  // namespace sluice
