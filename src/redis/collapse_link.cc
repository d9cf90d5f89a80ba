#include "redis/collapse_link.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/request_collapser.h"
#include "redis/lua_script.h"
#include "redis/request_codec.h"

namespace sluice::redis {

namespace {

// KEYS carrier, waiters   ARGV value, priority_us, tier, strict (0/1),
// ttl_ms, gateway, link -> the carrier link attached to, or "" (owned).
const LuaScript kAttach("collapse_attach", R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local p, tier, gw, id = string.match(v, '^(%d+)|(%d+)|([^|]*)|(.+)$')
  if p and gw ~= ARGV[6] then
    if tonumber(p) <= tonumber(ARGV[2]) and (ARGV[4] ~= '1' or tier == ARGV[3]) then
      redis.call('RPUSH', KEYS[2], id .. '|' .. ARGV[6] .. '|' .. ARGV[7])
      local ttl = redis.call('PTTL', KEYS[1])
      if ttl > redis.call('PTTL', KEYS[2]) then redis.call('PEXPIRE', KEYS[2], ttl) end
      return id
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
return ''
)lua");

// Shared by the two below: frees the carrier key if it names ARGV[1].
constexpr const char* kFreeIfMine = R"lua(
local function free_if_mine()
  local v = redis.call('GET', KEYS[1])
  local tail = '|' .. ARGV[1]
  if v and string.sub(v, -#tail) == tail then redis.call('DEL', KEYS[1]) end
end
)lua";

// KEYS carrier, waiters   ARGV link -> {"gateway|link", ...} the links
// waiting for it (taken off the list); the carrier key freed if it names it.
const LuaScript kTake("collapse_take", std::string(kFreeIfMine) + R"lua(
free_if_mine()
local all = redis.call('LRANGE', KEYS[2], '0', '-1')
local head = ARGV[1] .. '|'
local mine, others = {}, {}
for _, w in ipairs(all) do
  if string.sub(w, 1, #head) == head then
    mine[#mine + 1] = string.sub(w, #head + 1)
  else
    others[#others + 1] = w
  end
end
if #mine > 0 then
  local ttl = redis.call('PTTL', KEYS[2])
  redis.call('DEL', KEYS[2])
  if #others > 0 then
    redis.call('RPUSH', KEYS[2], unpack(others))
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
end
return mine
)lua");

// KEYS carrier, waiters   ARGV link -> 1 when no link waits for it (the
// carrier key freed if it names it), else 0.
const LuaScript kRelease("collapse_release", std::string(kFreeIfMine) + R"lua(
local head = ARGV[1] .. '|'
for _, w in ipairs(redis.call('LRANGE', KEYS[2], '0', '-1')) do
  if string.sub(w, 1, #head) == head then return 0 end
end
free_if_mine()
return 1
)lua");

bool IsOk(const ReplyResult& r) { return r.ok() && !r->is_error(); }

}  // namespace

struct CollapseLink::Core : std::enable_shared_from_this<Core> {
  enum class State { kAttaching, kAttached, kOwned };
  struct Entry {
    RequestPtr carrier;
    RequestPtr link;
    State state = State::kAttaching;
    std::string carrier_link;  // kAttached: the link it waits for
    bool withdrawn = false;
  };

  explicit Core(const Options& o) : options(o) {}

  const Options options;
  mutable std::mutex mu;
  std::unordered_map<std::string, Entry> by_carrier;  // carrier id -> its link; mu
  std::atomic<uint64_t> attached{0}, remote_answers{0}, owned{0}, forwarded{0}, retried{0}, kept{0},
      errors{0};

  const Clock& clock() const { return *options.clock; }
  std::string CarrierKey(const InferenceRequest& r) const {
    return options.keys.CollapseCarrier(r.cache_key);
  }
  std::string WaitersKey(const InferenceRequest& r) const {
    return options.keys.CollapseWaiters(r.cache_key);
  }
  RequestPtr MakeLink(const RequestPtr& carrier);
  void Start(const RequestPtr& carrier);
  void OnAttachReply(const std::string& carrier_id, const RequestPtr& link, ReplyResult r);
  void OnLinkDone(const std::string& carrier_id, const InferenceRequest* link,
                  InferenceOutcome&& outcome);
  // Publishes `outcome` to the links waiting for owned `link`.
  void Forward(const InferenceRequest& link, const InferenceOutcome& outcome);
  // Withdraws owned `link` unless other gateways wait for it.
  void Release(const RequestPtr& link);
  void Detach(const RequestPtr& link, const std::string& carrier_link);
};

RequestPtr CollapseLink::Core::MakeLink(const RequestPtr& carrier) {
  RequestPtr l = MakeStandIn(*carrier);
  l->set_on_complete([weak = weak_from_this(), carrier_id = carrier->id,
                      raw = l.get()](InferenceOutcome&& outcome) {
    if (auto self = weak.lock()) self->OnLinkDone(carrier_id, raw, std::move(outcome));
  });
  return l;
}

void CollapseLink::Core::Start(const RequestPtr& carrier) {
  RequestPtr link = MakeLink(carrier);
  {
    std::lock_guard<std::mutex> lock(mu);
    Entry& e = by_carrier[carrier->id];
    e.carrier = carrier;
    e.link = link;
    e.state = State::kAttaching;
    e.carrier_link.clear();
  }
  // Registered first: a forwarded answer may come before the script's reply.
  options.pending->Add(link);
  const WallClockAnchor now = WallClockAnchor::Now(clock());
  const int64_t priority_us = std::max<int64_t>(0, now.ToEpochUs(link->priority_deadline));
  const int64_t ttl_ms =
      std::max<int64_t>(1, ToMillis(link->total_deadline - now.steady) + 1) + 1'000;
  const std::string tier = std::to_string(link->principal.tier);
  const std::string value =
      fmt::format("{:016d}|{}|{}|{}", priority_us, tier, options.gateway_id, link->id);
  options.connection->RunScript(
      kAttach, {CarrierKey(*link), WaitersKey(*link)},
      {value, std::to_string(priority_us), tier,
       options.ordering == QueueOrdering::kStrictPriority ? "1" : "0", std::to_string(ttl_ms),
       options.gateway_id, link->id},
      [self = shared_from_this(), carrier_id = carrier->id, link](ReplyResult r) {
        self->OnAttachReply(carrier_id, link, std::move(r));
      });
}

void CollapseLink::Core::OnAttachReply(const std::string& carrier_id, const RequestPtr& link,
                                       ReplyResult r) {
  const bool ok = IsOk(r) && r->type == RedisReply::Type::kString;
  if (!ok) errors.fetch_add(1, std::memory_order_relaxed);
  const bool attach = ok && !r->str.empty();
  bool withdrawn = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = by_carrier.find(carrier_id);
    if (it == by_carrier.end() || it->second.link != link) return;  // ended meanwhile
    Entry& e = it->second;
    e.state = attach ? State::kAttached : State::kOwned;
    if (attach) e.carrier_link = r->str;
    withdrawn = e.withdrawn;
  }
  if (attach) {
    attached.fetch_add(1, std::memory_order_relaxed);
    if (withdrawn) return Detach(link, r->str);
    options.pending->MarkEnqueued(link->id);  // delivers an answer that came early
    return;
  }
  owned.fetch_add(1, std::memory_order_relaxed);
  // Queued here (the model's queue registers it again).
  if (options.pending->Remove(link->id) == nullptr) return;  // answered meanwhile (shutdown)
  if (Status s = options.queue->Push(link); !s.ok()) {
    InferenceOutcome o;
    o.status = std::move(s);
    link->Complete(std::move(o));
    return;
  }
  if (withdrawn) Release(link);
}

void CollapseLink::Core::OnLinkDone(const std::string& carrier_id, const InferenceRequest* link,
                                    InferenceOutcome&& outcome) {
  Entry e;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = by_carrier.find(carrier_id);
    if (it == by_carrier.end() || it->second.link.get() != link) return;
    e = std::move(it->second);
    by_carrier.erase(it);
  }
  if (e.state == State::kOwned) {
    Forward(*link, outcome);
  } else if (!outcome.status.ok() && outcome.reason != nullptr &&
             std::strcmp(outcome.reason, kForwardedFailure) == 0 && !e.withdrawn &&
             clock().Now() < e.carrier->total_deadline) {
    // The other gateway's carrier failed for its own reasons: try again.
    retried.fetch_add(1, std::memory_order_relaxed);
    Start(e.carrier);
    return;
  } else if (outcome.status.ok()) {
    remote_answers.fetch_add(1, std::memory_order_relaxed);
    outcome.collapsed = true;  // another gateway's item: every member shares it
  }
  e.carrier->Complete(std::move(outcome));
}

void CollapseLink::Core::Forward(const InferenceRequest& link, const InferenceOutcome& outcome) {
  WireResult base = ToWireResult(link.id, outcome, options.gateway_id);
  if (!outcome.status.ok()) base.reason = kForwardedFailure;
  options.connection->RunScript(
      kTake, {CarrierKey(link), WaitersKey(link)}, {link.id},
      [self = shared_from_this(), base = std::move(base)](ReplyResult r) mutable {
        if (!IsOk(r)) {
          self->errors.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        if (r->type != RedisReply::Type::kArray || r->elements.empty()) return;
        std::map<std::string, std::string> messages;  // gateway -> its JSON array
        for (const RedisReply& w : r->elements) {
          const size_t bar = w.str.find('|');
          if (bar == std::string::npos) continue;
          base.id = w.str.substr(bar + 1);
          std::string& m = messages[w.str.substr(0, bar)];
          m += m.empty() ? "[" : ",";
          m += EncodeResult(base);
        }
        for (auto& [gateway, message] : messages) {
          message += "]";
          self->options.connection->Submit(
              {"PUBLISH", self->options.keys.ResultChannel(gateway), std::move(message)},
              [](ReplyResult) {});
        }
        if (base.code == ErrorCode::kOk) {
          self->forwarded.fetch_add(r->elements.size(), std::memory_order_relaxed);
        }
      });
}

void CollapseLink::Core::Release(const RequestPtr& link) {
  options.connection->RunScript(kRelease, {CarrierKey(*link), WaitersKey(*link)}, {link->id},
                                [self = shared_from_this(), link](ReplyResult r) {
                                  if (IsOk(r) && r->AsInt().value_or(1) == 0) {
                                    self->kept.fetch_add(
                                        1, std::memory_order_relaxed);  // runs on for them
                                    return;
                                  }
                                  if (!IsOk(r))
                                    self->errors.fetch_add(1, std::memory_order_relaxed);
                                  link->Cancel();
                                  self->options.queue->Withdraw(link);
                                });
}

void CollapseLink::Core::Detach(const RequestPtr& link, const std::string& carrier_link) {
  if (options.pending->Remove(link->id) == nullptr) return;  // answered already
  options.connection->Submit(
      {"LREM", WaitersKey(*link), "1", carrier_link + "|" + options.gateway_id + "|" + link->id},
      [](ReplyResult) {});
  InferenceOutcome o;
  o.status = Status(ErrorCode::kCancelled, "the client went away");
  link->Complete(std::move(o));
}

Result<std::unique_ptr<CollapseLink>> CollapseLink::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("connection: required");
  if (options.queue == nullptr) return InvalidArgument("queue: required");
  if (options.pending == nullptr) return InvalidArgument("pending: required");
  if (Status s = ValidateKeyPart("gateway_id", options.gateway_id); !s.ok()) return s;
  Options o = options;
  if (o.clock == nullptr) o.clock = SystemClock();
  return std::unique_ptr<CollapseLink>(new CollapseLink(std::make_shared<Core>(o)));
}

CollapseLink::~CollapseLink() = default;

Status CollapseLink::Push(RequestPtr carrier) {
  core_->Start(carrier);
  return Status::Ok();
}

size_t CollapseLink::Depth() const { return core_->options.queue->Depth(); }
size_t CollapseLink::AsyncDepth() const { return core_->options.queue->AsyncDepth(); }
size_t CollapseLink::QueuedAhead(TierIndex tier, TimePoint deadline) const {
  return core_->options.queue->QueuedAhead(tier, deadline);
}

void CollapseLink::Withdraw(const RequestPtr& carrier) {
  Core& c = *core_;
  Core::State state;
  RequestPtr link;
  std::string carrier_link;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.by_carrier.find(carrier->id);
    if (it == c.by_carrier.end()) return;
    it->second.withdrawn = true;
    state = it->second.state;
    link = it->second.link;
    carrier_link = it->second.carrier_link;
  }
  switch (state) {
    case Core::State::kAttaching:
      return;  // the script's reply sees `withdrawn`
    case Core::State::kAttached:
      return c.Detach(link, carrier_link);
    case Core::State::kOwned:
      return c.Release(link);
  }
}

CollapseLink::Stats CollapseLink::stats() const {
  const Core& c = *core_;
  Stats s;
  s.attached = c.attached.load(std::memory_order_relaxed);
  s.remote_answers = c.remote_answers.load(std::memory_order_relaxed);
  s.owned = c.owned.load(std::memory_order_relaxed);
  s.forwarded = c.forwarded.load(std::memory_order_relaxed);
  s.retried = c.retried.load(std::memory_order_relaxed);
  s.kept = c.kept.load(std::memory_order_relaxed);
  s.redis_errors = c.errors.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice::redis
