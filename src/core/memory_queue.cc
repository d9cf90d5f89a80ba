#include "core/memory_queue.h"

#include <algorithm>
#include <cmath>

namespace sluice {

Result<std::unique_ptr<MemoryQueue>> MemoryQueue::Create(const Options& options) {
  if (options.capacity == 0) return InvalidArgument("queue capacity must be > 0");
  if (options.tiers.empty()) return InvalidArgument("queue needs at least one tier");
  if (options.tiers.size() > 255) return InvalidArgument("at most 255 tiers");
  return std::unique_ptr<MemoryQueue>(new MemoryQueue(options));
}

MemoryQueue::MemoryQueue(const Options& options)
    : options_(options),
      heaps_(options.tiers.size()),
      latest_(options.tiers.size()),
      expired_in_heap_(options.tiers.size(), 0) {
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
    if (!req->async && depth_ - async_depth_ >= options_.capacity) {
      return Unavailable("queue for model '" + req->model + "' is full");
    }
    size_t tier = req->principal.tier;
    if (tier >= heaps_.size()) return InvalidArgument("unknown tier index");
    req->seq = next_seq_++;
    const TimePoint order = req->queue_order();
    if (req->dispatch_deadline < order) {
      early_.push_back(Entry{req->dispatch_deadline, req->seq, req});
      std::push_heap(early_.begin(), early_.end(), Later{});
      early_queued_.insert(req->seq);
    }
    auto& heap = heaps_[tier];
    if (req->async) ++async_depth_;
    if (heap.empty() || order > latest_[tier]) latest_[tier] = order;
    heap.push_back(Entry{order, req->seq, std::move(req)});
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
  if (e.req->async) --async_depth_;
  if (!early_queued_.empty()) early_queued_.erase(e.seq);
  return e;
}

void MemoryQueue::SkipExpiredHeads() {
  if (early_expired_.empty()) return;
  for (size_t t = 0; t < heaps_.size(); ++t) {
    auto& heap = heaps_[t];
    while (!heap.empty() && early_expired_.erase(heap.front().seq) > 0) {
      std::pop_heap(heap.begin(), heap.end(), Later{});
      heap.pop_back();
      --expired_in_heap_[t];
    }
  }
}

void MemoryQueue::PopBatch(size_t max, TimePoint now, std::vector<RequestPtr>* batch,
                           std::vector<RequestPtr>* dropped) {
  std::lock_guard lock(mu_);
  size_t taken = 0;
  while (taken < max) {
    int t = NextTier();
    if (t < 0) break;
    Entry e = PopFrom(t);
    SkipExpiredHeads();
    if (e.req->dispatch_deadline <= now || e.req->cancelled()) {
      dropped->push_back(std::move(e.req));
      continue;
    }
    batch->push_back(std::move(e.req));
    ++taken;
  }
}

void MemoryQueue::RemoveExpired(TimePoint now, std::vector<RequestPtr>* expired) {
  std::lock_guard lock(mu_);
  // Each tier heap is deadline-ordered, so expired entries sit at its head;
  // shortened deadlines are in the side heap.
  for (size_t t = 0; t < heaps_.size(); ++t) {
    while (!heaps_[t].empty() && heaps_[t].front().deadline <= now) {
      expired->push_back(PopFrom(static_cast<int>(t)).req);
      SkipExpiredHeads();
    }
  }
  while (!early_.empty() && early_.front().deadline <= now) {
    std::pop_heap(early_.begin(), early_.end(), Later{});
    Entry e = std::move(early_.back());
    early_.pop_back();
    if (early_queued_.erase(e.seq) == 0) continue;  // popped before it expired
    early_expired_.insert(e.seq);
    ++expired_in_heap_[e.req->principal.tier];
    --depth_;
    if (e.req->async) --async_depth_;
    expired->push_back(std::move(e.req));
  }
  SkipExpiredHeads();
}

void MemoryQueue::RemoveAll(std::vector<RequestPtr>* out) {
  std::lock_guard lock(mu_);
  for (auto& heap : heaps_) {
    for (auto& e : heap) {
      if (early_expired_.count(e.seq) == 0) out->push_back(std::move(e.req));
    }
    heap.clear();
  }
  early_.clear();
  early_queued_.clear();
  early_expired_.clear();
  std::fill(expired_in_heap_.begin(), expired_in_heap_.end(), 0);
  depth_ = 0;
  async_depth_ = 0;
}

size_t MemoryQueue::Depth() const {
  std::lock_guard lock(mu_);
  return depth_;
}

size_t MemoryQueue::AsyncDepth() const {
  std::lock_guard lock(mu_);
  return async_depth_;
}

size_t MemoryQueue::QueuedAhead(TierIndex tier, TimePoint deadline) const {
  std::lock_guard lock(mu_);
  size_t ahead = 0;
  for (size_t t = 0; t < heaps_.size(); ++t) {
    const auto& heap = heaps_[t];
    const size_t queued = heap.size() - expired_in_heap_[t];  // expired ones wait to be skipped
    if (queued == 0) continue;
    if (options_.ordering == QueueOrdering::kStrictPriority) {
      if (tier < options_.tiers.size() &&
          options_.tiers[t].priority >= options_.tiers[tier].priority) {
        ahead += queued;
      }
      continue;
    }
    // A tier's priority deadlines are its arrivals plus one budget, so they
    // spread evenly between its head and its latest: count that share.
    const TimePoint first = heap.front().deadline, last = latest_[t];
    if (deadline <= first) continue;
    if (deadline > last || last <= first) {
      ahead += queued;
      continue;
    }
    const double share = std::chrono::duration<double>(deadline - first).count() /
                         std::chrono::duration<double>(last - first).count();
    ahead += static_cast<size_t>(std::ceil(share * static_cast<double>(queued)));
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
