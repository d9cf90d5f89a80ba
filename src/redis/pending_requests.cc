#include "redis/pending_requests.h"

namespace sluice::redis {

bool PendingRequests::Add(const RequestPtr& req) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(req->id);
  if (!inserted) return false;
  it->second.request = req;
  deadlines_.emplace(req->total_deadline, req->id);
  if (req->async) ++async_[req->model];
  return true;
}

RequestPtr PendingRequests::TakeLocked(std::unordered_map<std::string, Entry>::iterator it) {
  RequestPtr r = std::move(it->second.request);
  if (r != nullptr && r->async) {
    if (auto a = async_.find(r->model); a != async_.end() && --a->second == 0) async_.erase(a);
  }
  entries_.erase(it);
  return r;
}

void PendingRequests::MarkEnqueued(const std::string& id) {
  RequestPtr req;
  std::optional<WireResult> early;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (!it->second.early) {
      it->second.enqueued = true;
      return;
    }
    early = std::move(it->second.early);
    req = TakeLocked(it);
  }
  delivered_.fetch_add(1, std::memory_order_relaxed);
  req->Complete(ToOutcome(*early));
}

RequestPtr PendingRequests::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  return TakeLocked(it);
}

void PendingRequests::Deliver(WireResult&& result) {
  RequestPtr req;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(result.id);
    if (it == entries_.end() || it->second.early) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!it->second.enqueued) {
      it->second.early = std::move(result);
      return;
    }
    req = TakeLocked(it);
  }
  delivered_.fetch_add(1, std::memory_order_relaxed);
  req->Complete(ToOutcome(result));
}

bool PendingRequests::IsEnqueued(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.enqueued;
}

size_t PendingRequests::ExpireUntil(TimePoint now) {
  std::vector<RequestPtr> expired;
  {
    std::lock_guard lock(mu_);
    // Bounded by the heap's size; un-enqueued entries are re-pushed a little
    // later so that they are looked at again without blocking the rest.
    std::vector<Deadline> later;
    while (!deadlines_.empty() && deadlines_.top().first <= now) {
      Deadline top = deadlines_.top();
      deadlines_.pop();
      auto it = entries_.find(top.second);
      if (it == entries_.end()) continue;  // answered already
      if (!it->second.enqueued) {
        later.emplace_back(now + Millis(10), std::move(top.second));
        continue;
      }
      expired.push_back(TakeLocked(it));
    }
    for (Deadline& d : later) deadlines_.push(std::move(d));
  }
  for (RequestPtr& r : expired) {
    InferenceOutcome o;
    o.status = DeadlineExceeded("no answer from a worker before the request's total deadline");
    o.reason = "no_result";
    r->Complete(std::move(o));
  }
  expired_.fetch_add(expired.size(), std::memory_order_relaxed);
  return expired.size();
}

std::vector<RequestPtr> PendingRequests::TakeAll() {
  std::lock_guard lock(mu_);
  std::vector<RequestPtr> out;
  out.reserve(entries_.size());
  for (auto& [id, e] : entries_) out.push_back(std::move(e.request));
  entries_.clear();
  async_.clear();
  deadlines_ = {};
  return out;
}

size_t PendingRequests::async_waiting(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = async_.find(model);
  return it == async_.end() ? 0 : it->second;
}

size_t PendingRequests::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

PendingRequests::Stats PendingRequests::stats() const {
  return {delivered_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
          expired_.load(std::memory_order_relaxed)};
}

}  // namespace sluice::redis
