#include "redis/redis_task_store.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/crypto.h"
#include "common/log_throttle.h"
#include "redis/lua_script.h"

namespace sluice::redis {

namespace json = boost::json;

namespace {

// KEYS: the Idempotency-Key, the new task. ARGV: digest "|" task id, the
// pending task's value, its time to live (ms). Returns the key's value
// when it exists (nothing written), else "" after writing both.
const LuaScript kReserve("task_reserve", R"lua(
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return ''
)lua");

// KEYS task[, Idempotency-Key]   ARGV task id -> 1. Deletes the task if it
// is still pending, and the key if it still names the task: what a
// refused request, or a write whose reply was lost, leaves behind.
const LuaScript kForget("task_forget", R"lua(
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'P' then redis.call('DEL', KEYS[1]) end
if KEYS[2] then
  local k = redis.call('GET', KEYS[2])
  local tail = '|' .. ARGV[1]
  if k and string.sub(k, -#tail) == tail then redis.call('DEL', KEYS[2]) end
end
return 1
)lua");

constexpr const char* kStoreDown = "the task store (Redis) is unavailable; retry later";

bool IsOk(const ReplyResult& r) { return r.ok() && !r->is_error(); }

// What an Idempotency-Key's stored value (digest "|" task id) says of a
// request with `digest`: its repeat, or a conflict.
TaskStore::Reservation ExistingReservation(std::string_view stored, std::string_view digest) {
  const size_t bar = stored.find('|');
  TaskStore::Reservation out;
  out.task_id = bar == std::string_view::npos ? std::string() : std::string(stored.substr(bar + 1));
  out.kind = bar != std::string_view::npos && stored.substr(0, bar) == digest
                 ? TaskStore::Reservation::Kind::kExisting
                 : TaskStore::Reservation::Kind::kConflict;
  return out;
}

}  // namespace

std::string EncodeStoredTask(const std::string& owner, const TaskAnswer* answer) {
  std::string out;
  out.reserve(owner.size() + 2 + (answer ? answer->output.size() + 96 : 0));
  out.push_back(answer != nullptr ? 'D' : 'P');
  out.append(owner).push_back('\n');
  if (answer == nullptr) return out;
  json::object o;
  o["s"] = answer->http_status;
  o["o"] = answer->output;
  o["t"] = answer->tokens_used;
  o["l"] = answer->latency_ms;
  o["v"] = answer->model_version;
  if (answer->cached) o["c"] = true;
  if (answer->collapsed) o["k"] = true;
  if (!answer->error_code.empty()) o["ec"] = answer->error_code;
  if (!answer->error_message.empty()) o["em"] = answer->error_message;
  if (!answer->error_reason.empty()) o["er"] = answer->error_reason;
  out += json::serialize(o);
  return out;
}

std::optional<StoredTask> ParseStoredTask(std::string_view value) {
  if (value.empty() || (value[0] != 'P' && value[0] != 'D')) return std::nullopt;
  const size_t nl = value.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  StoredTask t;
  t.owner = std::string(value.substr(1, nl - 1));
  t.done = value[0] == 'D';
  if (!t.done) return t;
  boost::system::error_code ec;
  json::value v = json::parse(value.substr(nl + 1), ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  auto text = [&](const char* k) -> std::string {
    const json::value* f = o.if_contains(k);
    return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  auto number = [&](const char* k) -> int64_t {
    const json::value* f = o.if_contains(k);
    return f != nullptr && f->is_int64() ? f->get_int64() : 0;
  };
  auto flag = [&](const char* k) {
    const json::value* f = o.if_contains(k);
    return f != nullptr && f->is_bool() && f->get_bool();
  };
  TaskAnswer& a = t.answer;
  a.http_status = static_cast<int>(number("s"));
  a.output = text("o");
  a.tokens_used = static_cast<uint32_t>(std::max<int64_t>(0, number("t")));
  a.latency_ms = number("l");
  a.model_version = text("v");
  a.cached = flag("c");
  a.collapsed = flag("k");
  a.error_code = text("ec");
  a.error_message = text("em");
  a.error_reason = text("er");
  if (a.http_status < 100 || a.http_status > 599) return std::nullopt;
  return t;
}

struct RedisTaskStore::Core {
  struct Waiter {
    uint64_t id = 0;
    AwaitFn fn;
    Executor::TimerId timer = 0;
  };
  // A pending task taken here.
  struct Local {
    std::string owner;
    std::string idempotency_key;  // its Redis key, or empty
    bool stored = false;          // written to Redis (not a reservation in progress)
    std::vector<Waiter> waiters;
  };

  explicit Core(const Options& o) : options(o) {}

  const Options options;
  std::mutex mu;
  bool closed = false;                                    // guarded by mu
  std::unordered_map<std::string, Local> local;           // guarded by mu
  std::unordered_map<uint64_t, Executor::TimerId> polls;  // remote polls' timers; mu
  uint64_t next_id = 1;                                   // guarded by mu
  uint64_t created = 0, completed = 0, pending = 0;       // guarded by mu
  std::atomic<uint64_t> write_errors{0};
  LogThrottle write_log;

  TimePoint Now() const { return options.executor->clock().Now(); }
  // A new pending task's SET NX, and what its reply means (a failure is
  // undone: the hold released, the key deleted in case it was written).
  std::vector<std::string> NewTaskCommand(const std::string& id, const std::string& owner) const {
    return {"SET",
            TaskKey(owner, id),
            EncodeStoredTask(owner, nullptr),
            "PX",
            std::to_string(options.pending_ttl_ms),
            "NX"};
  }
  Status TaskWritten(const std::string& id, const std::string& owner, const ReplyResult& r) {
    if (!IsOk(r)) {
      Release(id);
      Forget(id, owner, "", /*wait=*/false);
      return Unavailable(kStoreDown);
    }
    if (r->is_nil()) {
      Release(id);
      return Internal("task '" + id + "' exists");
    }
    MarkStored(id);
    return Status::Ok();
  }
  std::string TaskKey(const std::string& owner, const std::string& id) const {
    return options.keys.Task(owner, id);
  }
  // Takes a place for pending task `id` (not yet stored). Errors:
  // kUnavailable when max_pending are pending, kInternal for an id in use.
  Status Hold(const std::string& id, const std::string& owner, std::string idempotency_key);
  void Release(const std::string& id);
  void MarkStored(const std::string& id);
  // The task as `owner` sees it from a GET reply (nullopt: unknown, other
  // owner, or the read failed).
  static std::optional<TaskView> ViewOf(const ReplyResult& r, const std::string& id,
                                        const std::string& owner);
  void OnLocalTimeout(const std::string& id, uint64_t waiter);
  // Runs kForget for task `id` of `owner` (and its Idempotency-Key, if
  // any); `wait`: until its reply.
  void Forget(const std::string& id, const std::string& owner, const std::string& idempotency_key,
              bool wait);
  // Reads another gateway's task; answers `fn` when done, unknown or at
  // `until`, else reads again after poll_interval_ms.
  static void Poll(const std::shared_ptr<Core>& self, uint64_t poll, std::string id,
                   std::string owner, TimePoint until, std::shared_ptr<AwaitFn> fn);
};

Status RedisTaskStore::Core::Hold(const std::string& id, const std::string& owner,
                                  std::string idempotency_key) {
  std::lock_guard<std::mutex> lock(mu);
  if (local.size() >= options.max_pending) {
    return Unavailable("too many asynchronous tasks are pending (" +
                       std::to_string(options.max_pending) + "); retry later");
  }
  auto [it, inserted] = local.try_emplace(id);
  if (!inserted) return Internal("task '" + id + "' exists");
  it->second.owner = owner;
  it->second.idempotency_key = std::move(idempotency_key);
  return Status::Ok();
}

void RedisTaskStore::Core::Release(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu);
  local.erase(id);
}

void RedisTaskStore::Core::MarkStored(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = local.find(id); it != local.end()) {
    it->second.stored = true;
    ++created;
    ++pending;
  }
}

std::optional<TaskView> RedisTaskStore::Core::ViewOf(const ReplyResult& r, const std::string& id,
                                                     const std::string& owner) {
  if (!IsOk(r) || r->type != RedisReply::Type::kString) return std::nullopt;
  std::optional<StoredTask> t = ParseStoredTask(r->str);
  if (!t || t->owner != owner) return std::nullopt;
  TaskView v;
  v.id = id;
  v.done = t->done;
  if (t->done) v.answer = std::move(t->answer);
  return v;
}

Result<std::unique_ptr<RedisTaskStore>> RedisTaskStore::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("connection: required");
  if (options.executor == nullptr) return InvalidArgument("executor: required");
  if (options.result_ttl_ms < 1 || options.result_ttl_ms > kMaxTtlMs) {
    return InvalidArgument("result_ttl_ms: must be between 1 and " + std::to_string(kMaxTtlMs) +
                           " (30 days), got " + std::to_string(options.result_ttl_ms));
  }
  if (options.pending_ttl_ms < 1 || options.pending_ttl_ms > kMaxTtlMs) {
    return InvalidArgument("pending_ttl_ms: must be between 1 and " + std::to_string(kMaxTtlMs) +
                           ", got " + std::to_string(options.pending_ttl_ms));
  }
  if (options.max_pending < 1) return InvalidArgument("max_pending: must be at least 1");
  if (options.poll_interval_ms < 1 || options.poll_interval_ms > 10'000) {
    return InvalidArgument("poll_interval_ms: must be between 1 and 10000");
  }
  return std::unique_ptr<RedisTaskStore>(new RedisTaskStore(std::make_shared<Core>(options)));
}

RedisTaskStore::~RedisTaskStore() {
  std::lock_guard<std::mutex> lock(core_->mu);
  core_->closed = true;
  for (auto& [id, task] : core_->local) {
    for (const Core::Waiter& w : task.waiters) core_->options.executor->Cancel(w.timer);
    task.waiters.clear();
  }
  for (const auto& [poll, timer] : core_->polls) core_->options.executor->Cancel(timer);
  core_->polls.clear();
}

Status RedisTaskStore::Create(const std::string& id, const std::string& owner) {
  Core& c = *core_;
  if (Status s = c.Hold(id, owner, ""); !s.ok()) return s;
  return c.TaskWritten(id, owner, c.options.connection->Call(c.NewTaskCommand(id, owner)));
}

void RedisTaskStore::CreateAsync(const std::string& id, const std::string& owner,
                                 std::function<void(Status)> done) {
  Core& c = *core_;
  if (Status s = c.Hold(id, owner, ""); !s.ok()) return done(std::move(s));
  c.options.connection->Submit(c.NewTaskCommand(id, owner),
                               [core = core_, id, owner, done = std::move(done)](ReplyResult r) {
                                 done(core->TaskWritten(id, owner, r));
                               });
}

Result<TaskStore::Reservation> RedisTaskStore::Reserve(const std::string& owner,
                                                       const std::string& key,
                                                       const std::string& digest,
                                                       const std::string& new_task_id) {
  Core& c = *core_;
  std::string idem = c.options.keys.IdempotencyKey(owner, ToHex(Sha256(key)));
  if (Status s = c.Hold(new_task_id, owner, idem); !s.ok()) {
    // No room for a new task; a repeat needs none.
    ReplyResult known = c.options.connection->Call({"GET", idem});
    if (!IsOk(known) || known->type != RedisReply::Type::kString) return s;
    return ExistingReservation(known->str, digest);
  }
  ReplyResult r = c.options.connection->CallScript(
      kReserve, {idem, c.TaskKey(owner, new_task_id)},
      {digest + "|" + new_task_id, EncodeStoredTask(owner, nullptr),
       std::to_string(c.options.pending_ttl_ms)});
  if (!IsOk(r) || r->type != RedisReply::Type::kString) {
    c.Release(new_task_id);
    c.Forget(new_task_id, owner, idem, /*wait=*/false);  // in case it ran
    return Unavailable(kStoreDown);
  }
  if (r->str.empty()) {
    c.MarkStored(new_task_id);
    return Reservation{Reservation::Kind::kNew, new_task_id};
  }
  c.Release(new_task_id);
  return ExistingReservation(r->str, digest);
}

void RedisTaskStore::Complete(const std::string& id, TaskAnswer answer) {
  Core& c = *core_;
  std::vector<Core::Waiter> waiters;
  std::string owner, idem;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.local.find(id);
    if (it == c.local.end() || !it->second.stored) return;
    owner = std::move(it->second.owner);
    idem = std::move(it->second.idempotency_key);
    waiters = std::move(it->second.waiters);
    for (const Core::Waiter& w : waiters) c.options.executor->Cancel(w.timer);
    c.local.erase(it);
    ++c.completed;
    --c.pending;
  }
  const std::string ttl = std::to_string(c.options.result_ttl_ms);
  auto on_reply = [core = core_, id](ReplyResult r) {
    if (IsOk(r)) return;
    core->write_errors.fetch_add(1, std::memory_order_relaxed);
    if (auto held = core->write_log.Allow()) {
      spdlog::warn("tasks: the answer of task {} was not stored in Redis ({}; {} more held back)",
                   id, r.ok() ? r->str : r.status().message(), *held);
    }
  };
  // XX: a task that expired meanwhile stays gone.
  c.options.connection->Submit(
      {"SET", c.TaskKey(owner, id), EncodeStoredTask(owner, &answer), "PX", ttl, "XX"}, on_reply);
  if (!idem.empty()) c.options.connection->Submit({"PEXPIRE", idem, ttl}, on_reply);
  if (waiters.empty()) return;
  TaskView view;
  view.id = id;
  view.done = true;
  view.answer = std::move(answer);
  for (Core::Waiter& w : waiters) w.fn(view);
}

std::optional<TaskView> RedisTaskStore::Get(const std::string& id, const std::string& owner) {
  return Core::ViewOf(core_->options.connection->Call({"GET", core_->TaskKey(owner, id)}), id,
                      owner);
}

void RedisTaskStore::Await(const std::string& id, const std::string& owner, TimePoint until,
                           AwaitFn fn) {
  Core& c = *core_;
  const TimePoint now = c.Now();
  uint64_t poll = 0;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.closed) return;
    auto it = c.local.find(id);
    if (it != c.local.end() && it->second.stored && it->second.owner == owner) {
      // Taken here: its Complete() answers the wait.
      Core::Local& task = it->second;
      if (until > now && task.waiters.size() < kMaxWaitersPerTask) {
        Core::Waiter w;
        w.id = c.next_id++;
        w.fn = std::move(fn);
        w.timer = c.options.executor->RunAt(
            until, [core = core_, id, waiter = w.id] { core->OnLocalTimeout(id, waiter); });
        task.waiters.push_back(std::move(w));
        return;
      }
    } else if (until > now && c.polls.size() < kMaxRemotePolls) {
      poll = c.next_id++;
      c.polls.emplace(poll, 0);
    }
  }
  // Another gateway's task (or one answered as it is now): read it.
  Core::Poll(core_, poll, id, owner, poll != 0 ? until : now,
             std::make_shared<AwaitFn>(std::move(fn)));
}

void RedisTaskStore::Core::Forget(const std::string& id, const std::string& owner,
                                  const std::string& idempotency_key, bool wait) {
  std::vector<std::string> keys = {TaskKey(owner, id)};
  if (!idempotency_key.empty()) keys.push_back(idempotency_key);
  if (wait) {
    options.connection->CallScript(kForget, std::move(keys), {id});
  } else {
    options.connection->RunScript(kForget, std::move(keys), {id}, [](ReplyResult) {});
  }
}

void RedisTaskStore::Core::OnLocalTimeout(const std::string& id, uint64_t waiter) {
  AwaitFn fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return;
    auto it = local.find(id);
    if (it == local.end()) return;
    std::vector<Waiter>& waiters = it->second.waiters;
    auto w = std::find_if(waiters.begin(), waiters.end(),
                          [waiter](const Waiter& x) { return x.id == waiter; });
    if (w == waiters.end()) return;
    fn = std::move(w->fn);
    waiters.erase(w);
  }
  TaskView pending;
  pending.id = id;
  fn(std::move(pending));
}

void RedisTaskStore::Core::Poll(const std::shared_ptr<Core>& self, uint64_t poll, std::string id,
                                std::string owner, TimePoint until, std::shared_ptr<AwaitFn> fn) {
  std::string key = self->TaskKey(owner, id);
  self->options.connection->Submit(
      {"GET", std::move(key)}, [self, poll, id = std::move(id), owner = std::move(owner), until,
                                fn = std::move(fn)](ReplyResult r) mutable {
        std::optional<TaskView> view = ViewOf(r, id, owner);
        const TimePoint now = self->Now();
        const bool again = view && !view->done && poll != 0 && now < until;
        {
          std::lock_guard<std::mutex> lock(self->mu);
          if (self->closed) return;
          if (!again) {
            self->polls.erase(poll);
          } else {
            const TimePoint next = std::min(until, now + Millis(self->options.poll_interval_ms));
            self->polls[poll] = self->options.executor->RunAt(
                next,
                [self, poll, id, owner, until, fn] { Poll(self, poll, id, owner, until, fn); });
            return;
          }
        }
        (*fn)(std::move(view));
      });
}

void RedisTaskStore::Discard(const std::string& id) {
  Core& c = *core_;
  std::vector<Core::Waiter> waiters;
  std::string owner, idem;
  bool stored = false;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.local.find(id);
    if (it == c.local.end()) return;
    owner = std::move(it->second.owner);
    idem = std::move(it->second.idempotency_key);
    stored = it->second.stored;
    waiters = std::move(it->second.waiters);
    for (const Core::Waiter& w : waiters) c.options.executor->Cancel(w.timer);
    c.local.erase(it);
    if (stored) {
      --c.created;
      --c.pending;
    }
  }
  // With a key it waits: a retry with the same key, at any gateway, must run.
  if (stored) c.Forget(id, owner, idem, /*wait=*/!idem.empty());
  for (Core::Waiter& w : waiters) w.fn(std::nullopt);
}

TaskStore::Stats RedisTaskStore::stats() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  Stats s;
  s.created = core_->created;
  s.completed = core_->completed;
  s.pending = core_->pending;
  return s;
}

uint64_t RedisTaskStore::write_errors() const {
  return core_->write_errors.load(std::memory_order_relaxed);
}

}  // namespace sluice::redis
