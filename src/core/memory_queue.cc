#include "core/memory_queue.h"

#include <algorithm>

namespace sluice {

Result<std::unique_ptr<MemoryQueue>> MemoryQueue::Create(const Options& options) {
  if (options.capacity == 0) return InvalidArgument("queue capacity must be > 0");
  if (options.tiers.empty()) return InvalidArgument("queue needs at least one tier");
  if (options.tiers.size() > 255) return InvalidArgument("at most 255 tiers");
  return std::unique_ptr<MemoryQueue>(new MemoryQueue(options));
}

MemoryQueue::MemoryQueue(const Options& options) : options_(options), heaps_(options.tiers.size()) {
  for (int i = 0; i < static_cast<int>(options_.tiers.size()); ++i) tiers_by_priority_.push_back(i);
  std::stable_sort(tiers_by_priority_.begin(), tiers_by_priority_.end(), [this](int a, int b) {
    return options_.tiers[a].priority > options_.tiers[b].priority;
  });
  for (auto& heap : heaps_) heap.reserve(std::min<size_t>(options_.capacity, 4096));
}

Status MemoryQueue::Push(RequestPtr req) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (depth_ >= options_.capacity) {
      return Unavailable("queue for model '" + req->model + "' is full");
    }
    size_t tier = req->principal.tier;
    if (tier >= heaps_.size()) return InvalidArgument("unknown tier index");
    req->seq = next_seq_++;
    auto& heap = heaps_[tier];
    heap.push_back(Entry{req->dispatch_deadline, req->seq, std::move(req)});
    std::push_heap(heap.begin(), heap.end(), Later{});
    ++depth_;
    if (notify_depth_ != 0 && depth_ >= notify_depth_) {
      notify_depth_ = 0;
      wake = std::move(notify_fn_);
      notify_fn_ = nullptr;
    }
  }
  if (wake) wake();
  return Status::Ok();
}

int MemoryQueue::NextTier() const {
  if (options_.ordering == QueueOrdering::kStrictPriority) {
    for (int t : tiers_by_priority_) {
      if (!heaps_[t].empty()) return t;
    }
    return -1;
  }
  int best = -1;
  // tiers_by_priority_ order makes the higher tier win deadline ties.
  for (int t : tiers_by_priority_) {
    if (heaps_[t].empty()) continue;
    if (best < 0 || heaps_[t].front().deadline < heaps_[best].front().deadline) best = t;
  }
  return best;
}

MemoryQueue::Entry MemoryQueue::PopFrom(int tier) {
  auto& heap = heaps_[tier];
  std::pop_heap(heap.begin(), heap.end(), Later{});
  Entry e = std::move(heap.back());
  heap.pop_back();
  --depth_;
  return e;
}

void MemoryQueue::PopBatch(size_t max, TimePoint now, std::vector<RequestPtr>* batch,
                           std::vector<RequestPtr>* dropped) {
  std::lock_guard lock(mu_);
  size_t taken = 0;
  while (taken < max) {
    int t = NextTier();
    if (t < 0) break;
    Entry e = PopFrom(t);
    if (e.deadline <= now || e.req->cancelled()) {
      dropped->push_back(std::move(e.req));
      continue;
    }
    batch->push_back(std::move(e.req));
    ++taken;
  }
}

void MemoryQueue::RemoveExpired(TimePoint now, std::vector<RequestPtr>* expired) {
  std::lock_guard lock(mu_);
  // Each tier heap is deadline-ordered, so expired entries sit at its head.
  for (size_t t = 0; t < heaps_.size(); ++t) {
    while (!heaps_[t].empty() && heaps_[t].front().deadline <= now) {
      expired->push_back(PopFrom(static_cast<int>(t)).req);
    }
  }
}

void MemoryQueue::RemoveAll(std::vector<RequestPtr>* out) {
  std::lock_guard lock(mu_);
  for (auto& heap : heaps_) {
    for (auto& e : heap) out->push_back(std::move(e.req));
    heap.clear();
  }
  depth_ = 0;
}

size_t MemoryQueue::Depth() const {
  std::lock_guard lock(mu_);
  return depth_;
}

size_t MemoryQueue::QueuedAhead(TierIndex tier, TimePoint deadline) const {
  std::lock_guard lock(mu_);
  size_t ahead = 0;
  for (size_t t = 0; t < heaps_.size(); ++t) {
    if (heaps_[t].empty()) continue;
    bool counts = options_.ordering == QueueOrdering::kStrictPriority
                      ? tier < options_.tiers.size() &&
                            options_.tiers[t].priority >= options_.tiers[tier].priority
                      : heaps_[t].front().deadline < deadline;
    if (counts) ahead += heaps_[t].size();
  }
  return ahead;
}

std::optional<TimePoint> MemoryQueue::OldestArrival() const {
  std::lock_guard lock(mu_);
  std::optional<TimePoint> oldest;
  for (const auto& heap : heaps_) {
    if (heap.empty()) continue;
    TimePoint a = heap.front().req->arrival;
    if (!oldest || a < *oldest) oldest = a;
  }
  return oldest;
}

std::optional<TimePoint> MemoryQueue::EarliestDeadline() const {
  std::lock_guard lock(mu_);
  std::optional<TimePoint> earliest;
  for (const auto& heap : heaps_) {
    if (heap.empty()) continue;
    if (!earliest || heap.front().deadline < *earliest) earliest = heap.front().deadline;
  }
  return earliest;
}

bool MemoryQueue::NotifyAtDepth(size_t min_depth, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  if (depth_ >= min_depth) return false;
  notify_depth_ = min_depth;
  notify_fn_ = std::move(fn);
  return true;
}

void MemoryQueue::ClearNotify() {
  std::lock_guard lock(mu_);
  notify_depth_ = 0;
  notify_fn_ = nullptr;
}

}  // namespace sluice
