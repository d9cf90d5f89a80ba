#include "core/memory_task_store.h"

#include <algorithm>

namespace sluice {

namespace {

std::string ReservationKey(const std::string& owner, const std::string& key) {
  std::string k;
  k.reserve(owner.size() + 1 + key.size());
  k.append(owner).push_back('\n');
  k.append(key);
  return k;
}

// A task's size as the budget counts it; `reservation`: its Idempotency-Key
// entry's key ("" when none), which also holds a 64-digit digest and the id.
uint64_t TaskBytes(const std::string& id, const std::string& owner, const TaskAnswer& a,
                   const std::string& reservation) {
  uint64_t bytes = MemoryTaskStore::kTaskOverheadBytes + id.size() + owner.size() +
                   a.output.size() + a.model_version.size() + a.error_code.size() +
                   a.error_message.size() + a.error_reason.size();
  if (!reservation.empty()) bytes += reservation.size() + 64 + id.size();
  return bytes;
}

}  // namespace

Result<std::unique_ptr<MemoryTaskStore>> MemoryTaskStore::Create(const Options& options) {
  if (options.result_ttl_ms < 1 || options.result_ttl_ms > kMaxTtlMs) {
    return InvalidArgument("result_ttl_ms: must be between 1 and " + std::to_string(kMaxTtlMs) +
                           " (30 days), got " + std::to_string(options.result_ttl_ms));
  }
  if (options.max_bytes < 1) return InvalidArgument("max_bytes: must be at least 1");
  if (options.max_pending < 1) return InvalidArgument("max_pending: must be at least 1");
  if (options.executor == nullptr) return InvalidArgument("executor: required");
  return std::unique_ptr<MemoryTaskStore>(new MemoryTaskStore(options));
}

MemoryTaskStore::~MemoryTaskStore() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, task] : tasks_) {
    for (const Waiter& w : task.waiters) options_.executor->Cancel(w.timer);
  }
}

Status MemoryTaskStore::Create(const std::string& id, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  TrimLocked(options_.executor->clock().Now());
  return CreateLocked(id, owner);
}

Status MemoryTaskStore::CreateLocked(const std::string& id, const std::string& owner) {
  if (stats_.pending >= options_.max_pending) {
    return Unavailable("too many asynchronous tasks are pending (" +
                       std::to_string(options_.max_pending) + "); retry later");
  }
  auto [it, inserted] = tasks_.try_emplace(id);
  if (!inserted) return Internal("task '" + id + "' exists");
  it->second.owner = owner;
  ++stats_.created;
  ++stats_.pending;
  return Status::Ok();
}

void MemoryTaskStore::Complete(const std::string& id, TaskAnswer answer) {
  std::vector<Waiter> waiters;
  TaskView view;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second.done) return;
    const TimePoint now = options_.executor->clock().Now();
    Task& task = it->second;
    task.done = true;
    task.answer = std::move(answer);
    task.expires = now + Millis(options_.result_ttl_ms);
    task.bytes = TaskBytes(id, task.owner, task.answer, task.reservation);
    task.in_order = done_order_.insert(done_order_.end(), id);
    waiters = std::move(task.waiters);
    task.waiters.clear();
    for (const Waiter& w : waiters) options_.executor->Cancel(w.timer);
    if (!waiters.empty()) view = View(id, task);
    --stats_.pending;
    ++stats_.completed;
    ++stats_.stored;
    stats_.bytes += task.bytes;
    TrimLocked(now);
  }
  for (Waiter& w : waiters) w.fn(view);
}

std::optional<TaskView> MemoryTaskStore::Get(const std::string& id, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  TrimLocked(options_.executor->clock().Now());
  Task* task = FindLocked(id, owner);
  if (task == nullptr) return std::nullopt;
  return View(id, *task);
}

void MemoryTaskStore::Await(const std::string& id, const std::string& owner, TimePoint until,
                            AwaitFn fn) {
  std::optional<TaskView> now_view;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const TimePoint now = options_.executor->clock().Now();
    TrimLocked(now);
    Task* task = FindLocked(id, owner);
    if (task != nullptr && !task->done && until > now &&
        task->waiters.size() < kMaxWaitersPerTask) {
      Waiter w;
      w.id = next_waiter_++;
      w.fn = std::move(fn);
      w.timer =
          options_.executor->RunAt(until, [this, id, waiter = w.id] { OnWaitTimeout(id, waiter); });
      task->waiters.push_back(std::move(w));
      return;
    }
    if (task != nullptr) now_view = View(id, *task);
  }
  fn(std::move(now_view));
}

void MemoryTaskStore::OnWaitTimeout(const std::string& id, uint64_t waiter) {
  AwaitFn fn;
  TaskView view;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    std::vector<Waiter>& waiters = it->second.waiters;
    auto w = std::find_if(waiters.begin(), waiters.end(),
                          [waiter](const Waiter& x) { return x.id == waiter; });
    if (w == waiters.end()) return;
    fn = std::move(w->fn);
    waiters.erase(w);
    view = View(id, it->second);
  }
  fn(std::move(view));
}

Result<TaskStore::Reservation> MemoryTaskStore::Reserve(const std::string& owner,
                                                        const std::string& key,
                                                        const std::string& digest,
                                                        const std::string& new_task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  TrimLocked(options_.executor->clock().Now());
  std::string rkey = ReservationKey(owner, key);
  if (auto it = reservations_.find(rkey); it != reservations_.end()) {
    Reservation r;
    r.kind =
        it->second.digest == digest ? Reservation::Kind::kExisting : Reservation::Kind::kConflict;
    r.task_id = it->second.task_id;
    return r;
  }
  if (Status s = CreateLocked(new_task_id, owner); !s.ok()) return s;
  tasks_[new_task_id].reservation = rkey;
  reservations_.emplace(std::move(rkey), Reserved{digest, new_task_id});
  return Reservation{Reservation::Kind::kNew, new_task_id};
}

void MemoryTaskStore::Discard(const std::string& id) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    if (it->second.done) {
      EraseDoneLocked(it);
      return;
    }
    waiters = std::move(it->second.waiters);
    for (const Waiter& w : waiters) options_.executor->Cancel(w.timer);
    if (!it->second.reservation.empty()) reservations_.erase(it->second.reservation);
    --stats_.pending;
    --stats_.created;
    tasks_.erase(it);
  }
  for (Waiter& w : waiters) w.fn(std::nullopt);
}

TaskStore::Stats MemoryTaskStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void MemoryTaskStore::TrimLocked(TimePoint now) {
  while (!done_order_.empty()) {
    auto it = tasks_.find(done_order_.front());
    const bool expired = it->second.expires <= now;
    if (!expired && stats_.bytes <= options_.max_bytes) break;
    ++(expired ? stats_.expired : stats_.evicted);
    EraseDoneLocked(it);
  }
}

void MemoryTaskStore::EraseDoneLocked(std::unordered_map<std::string, Task>::iterator it) {
  Task& task = it->second;
  done_order_.erase(task.in_order);
  stats_.bytes -= task.bytes;
  --stats_.stored;
  if (!task.reservation.empty()) reservations_.erase(task.reservation);
  tasks_.erase(it);
}

MemoryTaskStore::Task* MemoryTaskStore::FindLocked(const std::string& id,
                                                   const std::string& owner) {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second.owner != owner) return nullptr;
  return &it->second;
}

TaskView MemoryTaskStore::View(const std::string& id, const Task& task) {
  TaskView v;
  v.id = id;
  v.done = task.done;
  if (task.done) v.answer = task.answer;
  return v;
}

}  // namespace sluice
