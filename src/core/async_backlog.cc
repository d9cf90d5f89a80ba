#include "core/async_backlog.h"

#include <vector>

namespace sluice {

Result<std::unique_ptr<AsyncBacklog>> AsyncBacklog::Create(const Options& options) {
  if (options.queue == nullptr) return InvalidArgument("queue: required");
  if (options.executor == nullptr) return InvalidArgument("executor: required");
  if (options.max_held < 1) return InvalidArgument("max_held: must be at least 1");
  if (!options.release_below) return InvalidArgument("release_below: required");
  if (options.tick <= Micros(0)) return InvalidArgument("tick: must be positive");
  return std::unique_ptr<AsyncBacklog>(new AsyncBacklog(options));
}

AsyncBacklog::~AsyncBacklog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (armed_) options_.executor->Cancel(timer_);
}

Status AsyncBacklog::Push(RequestPtr req) {
  if (!req->async) return options_.queue->Push(std::move(req));
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Unavailable("the gateway is shutting down");
  if (held_.size() >= options_.max_held) {
    return Unavailable("too many asynchronous requests wait at this gateway (" +
                       std::to_string(options_.max_held) + "); retry later");
  }
  const uint64_t seq = next_++;
  Held h;
  h.by_order = {req->queue_order(), seq};
  h.by_expiry = {req->total_deadline, seq};
  const InferenceRequest* key = req.get();
  order_.emplace(h.by_order, key);
  expiry_.emplace(h.by_expiry, key);
  h.req = std::move(req);
  held_.emplace(key, std::move(h));
  ArmLocked();
  return Status::Ok();
}

void AsyncBacklog::ArmLocked() {
  if (armed_ || held_.empty()) return;
  armed_ = true;
  timer_ = options_.executor->RunAt(options_.executor->clock().Now() + options_.tick,
                                    [this] { Tick(); });
}

RequestPtr AsyncBacklog::TakeLocked(
    std::unordered_map<const InferenceRequest*, Held>::iterator it) {
  order_.erase(it->second.by_order);
  expiry_.erase(it->second.by_expiry);
  RequestPtr req = std::move(it->second.req);
  held_.erase(it);
  return req;
}

void AsyncBacklog::Tick() {
  const TimePoint now = options_.executor->clock().Now();
  // Read outside the lock (as everywhere): the queue may take its own.
  const size_t depth = options_.queue->Depth();
  const size_t below = options_.release_below();
  std::vector<RequestPtr> late, release;
  bool waiting = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
    while (!expiry_.empty() && expiry_.begin()->first.first <= now) {
      late.push_back(TakeLocked(held_.find(expiry_.begin()->second)));
    }
    for (size_t room = below > depth ? below - depth : 0; room > 0 && !order_.empty(); --room) {
      release.push_back(TakeLocked(held_.find(order_.begin()->second)));
    }
    released_ += release.size();
    expired_ += late.size();
    if (!closed_) ArmLocked();
    waiting = !held_.empty();
  }
  if (release.empty() && waiting && options_.refresh_depth) options_.refresh_depth();
  for (RequestPtr& r : release) {
    if (Status s = options_.queue->Push(r); !s.ok()) {
      InferenceOutcome o;
      o.status = std::move(s);
      r->Complete(std::move(o));
    }
  }
  for (RequestPtr& r : late) {
    InferenceOutcome o;
    o.status = DeadlineExceeded("deadline passed while the request waited for capacity");
    r->Complete(std::move(o));
  }
}

void AsyncBacklog::Withdraw(const RequestPtr& req) {
  RequestPtr mine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = held_.find(req.get());
    if (it != held_.end()) mine = TakeLocked(it);
  }
  if (mine == nullptr) return options_.queue->Withdraw(req);
  InferenceOutcome o;
  o.status = Status(ErrorCode::kCancelled, "the client went away");
  mine->Complete(std::move(o));
}

void AsyncBacklog::Close() {
  std::vector<RequestPtr> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    if (armed_) options_.executor->Cancel(timer_);
    armed_ = false;
    while (!held_.empty()) all.push_back(TakeLocked(held_.begin()));
  }
  for (RequestPtr& r : all) {
    InferenceOutcome o;
    o.status = Unavailable("the gateway shut down before this request was queued");
    r->Complete(std::move(o));
  }
}

size_t AsyncBacklog::Depth() const {
  const size_t queued = options_.queue->Depth();
  std::lock_guard<std::mutex> lock(mu_);
  return queued + held_.size();
}

size_t AsyncBacklog::AsyncDepth() const {
  const size_t queued = options_.queue->AsyncDepth();
  std::lock_guard<std::mutex> lock(mu_);
  return queued + held_.size();
}

size_t AsyncBacklog::QueuedAhead(TierIndex tier, TimePoint deadline) const {
  const size_t queued = options_.queue->QueuedAhead(tier, deadline);
  std::lock_guard<std::mutex> lock(mu_);
  const bool behind_held = !order_.empty() && order_.begin()->first.first < deadline;
  return queued + (behind_held ? held_.size() : 0);
}

AsyncBacklog::Stats AsyncBacklog::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{held_.size(), released_, expired_};
}

}  // namespace sluice
