#include "core/request_collapser.h"

#include <algorithm>

#include "common/ids.h"

namespace sluice {

namespace {

InferenceOutcome Failed(Status status, const char* reason = nullptr) {
  InferenceOutcome o;
  o.status = std::move(status);
  o.reason = reason;
  return o;
}

// The carrier's answer as `member` sees it: its queue wait runs from its own
// arrival to the carrier's dispatch (none when it came later), and the
// accelerator time is what it waited of the batch.
InferenceOutcome ForMember(const InferenceOutcome& answer, const InferenceRequest& carrier,
                           const InferenceRequest& member, bool collapsed) {
  InferenceOutcome o = answer;
  const TimePoint dispatched = carrier.arrival + answer.queue_wait;
  const SteadyClock::duration zero{};
  o.queue_wait = std::max(zero, dispatched - member.arrival);
  o.accelerator_time =
      std::max(zero, answer.accelerator_time - std::max(zero, member.arrival - dispatched));
  o.collapsed = collapsed;
  return o;
}

}  // namespace

struct RequestCollapser::Shared : std::enable_shared_from_this<Shared> {
  Options options;
  mutable std::mutex mu;
  // Groups waiting for an answer, by key, oldest first (a newer one is
  // more urgent than the ones before, or of another tier). Guarded by mu.
  std::unordered_map<std::string, std::vector<GroupPtr>> by_key;
  size_t live = 0;     // groups in by_key; guarded by mu
  size_t waiting = 0;  // their members; guarded by mu
  std::atomic<uint64_t> collapsed{0};

  // A new carrier for `group`, made from `like`. REQUIRES: mu held.
  RequestPtr MakeCarrier(const GroupPtr& group, const InferenceRequest& like);
  // REQUIRES: mu held.
  void AddMember(const GroupPtr& group, const RequestPtr& req);
  // Takes `group` out of by_key and returns its members, their timers
  // cancelled. REQUIRES: mu held.
  std::vector<Member> End(const GroupPtr& group);
  // Pushes `carrier`; when the queue refuses it, ends `group` and answers
  // its members (all but `except`) with the refusal.
  Status PushCarrier(const GroupPtr& group, const RequestPtr& carrier,
                     const InferenceRequest* except = nullptr);
  void OnCarrierDone(const std::weak_ptr<Group>& weak, const InferenceRequest* carrier,
                     InferenceOutcome&& outcome);
  void OnMemberDeadline(const std::weak_ptr<Group>& weak, const InferenceRequest* member);
  // Whether `req` may wait for `group`'s carrier. REQUIRES: mu held.
  bool MayJoin(const Group& group, const InferenceRequest& req) const;
  // The newest of `groups` that `req` may join, or null. REQUIRES: mu held.
  GroupPtr JoinableFor(const std::vector<GroupPtr>& groups, const InferenceRequest& req) const {
    for (auto g = groups.rbegin(); g != groups.rend(); ++g) {
      if (MayJoin(**g, req)) return *g;
    }
    return nullptr;
  }
  // Withdraws a carrier no member waits for any more.
  void Abandon(const RequestPtr& carrier) {
    carrier->Cancel();
    options.queue->Withdraw(carrier);
  }
};

RequestPtr MakeStandIn(const InferenceRequest& like) {
  auto c = std::make_shared<InferenceRequest>();
  c->id = NewRequestId();
  c->principal = like.principal;
  c->model_index = like.model_index;
  c->model = like.model;
  c->input = like.input;
  c->params = like.params;
  c->arrival = like.arrival;
  c->dispatch_deadline = like.dispatch_deadline;
  c->priority_deadline = like.priority_deadline;
  c->total_deadline = like.total_deadline;
  c->cache_key = like.cache_key;
  c->async = like.async;
  c->admitted = true;
  c->charged_tokens = 0;
  return c;
}

RequestPtr RequestCollapser::Shared::MakeCarrier(const GroupPtr& group,
                                                 const InferenceRequest& like) {
  RequestPtr c = MakeStandIn(like);
  c->set_on_complete([weak_self = weak_from_this(), weak_group = std::weak_ptr<Group>(group),
                      raw = c.get()](InferenceOutcome&& outcome) {
    if (auto self = weak_self.lock()) self->OnCarrierDone(weak_group, raw, std::move(outcome));
  });
  group->carrier = c;
  group->origin_id = like.id;
  return c;
}

void RequestCollapser::Shared::AddMember(const GroupPtr& group, const RequestPtr& req) {
  Member m;
  m.req = req;
  m.timer = options.executor->RunAt(
      req->total_deadline,
      [weak_self = weak_from_this(), weak_group = std::weak_ptr<Group>(group), raw = req.get()] {
        if (auto self = weak_self.lock()) self->OnMemberDeadline(weak_group, raw);
      });
  group->members.push_back(std::move(m));
  ++waiting;
}

std::vector<RequestCollapser::Member> RequestCollapser::Shared::End(const GroupPtr& group) {
  group->joinable = false;
  auto it = by_key.find(group->key);
  if (it != by_key.end()) {
    std::vector<GroupPtr>& groups = it->second;
    auto g = std::find(groups.begin(), groups.end(), group);
    if (g != groups.end()) {
      groups.erase(g);
      --live;
    }
    if (groups.empty()) by_key.erase(it);
  }
  std::vector<Member> members = std::move(group->members);
  group->members.clear();
  waiting -= members.size();
  for (const Member& m : members) options.executor->Cancel(m.timer);
  return members;
}

Status RequestCollapser::Shared::PushCarrier(const GroupPtr& group, const RequestPtr& carrier,
                                             const InferenceRequest* except) {
  Status s = options.queue->Push(carrier);
  if (s.ok()) return s;
  std::vector<Member> members;
  {
    std::lock_guard<std::mutex> lock(mu);
    // Nothing completes a carrier that was never queued: the group is as
    // this call left it, plus what joined since.
    members = End(group);
  }
  for (Member& m : members) {
    if (m.req.get() != except) m.req->Complete(Failed(s, "queue_full"));
  }
  return s;
}

void RequestCollapser::Shared::OnCarrierDone(const std::weak_ptr<Group>& weak,
                                             const InferenceRequest* carrier,
                                             InferenceOutcome&& outcome) {
  GroupPtr group = weak.lock();
  if (!group) return;
  std::vector<Member> members;
  std::string origin;
  RequestPtr next;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (group->carrier.get() != carrier || group->members.empty()) return;
    if (outcome.status.code() == ErrorCode::kDeadlineExceeded) {
      // The carrier's own deadline, which is one member's: the members with
      // a later one get a carrier of their own. Each such replacement has a
      // later deadline than the last, so this ends.
      const Member* best = nullptr;
      for (const Member& m : group->members) {
        if (m.req->total_deadline <= carrier->total_deadline) continue;
        if (best == nullptr || m.req->queue_order() < best->req->queue_order()) best = &m;
      }
      if (best != nullptr) next = MakeCarrier(group, *best->req);
    }
    if (next == nullptr) {
      origin = group->origin_id;
      members = End(group);
    }
  }
  if (next != nullptr) {
    PushCarrier(group, next);
    return;
  }
  for (Member& m : members) {
    // Answered with another request's batch item, not one made from its own
    // (the carrier's own was another gateway's: outcome.collapsed).
    const bool shared_item = m.req->id != origin || outcome.collapsed;
    if (shared_item && outcome.status.ok()) collapsed.fetch_add(1, std::memory_order_relaxed);
    m.req->Complete(ForMember(outcome, *carrier, *m.req, shared_item));
  }
}

void RequestCollapser::Shared::OnMemberDeadline(const std::weak_ptr<Group>& weak,
                                                const InferenceRequest* member) {
  GroupPtr group = weak.lock();
  if (!group) return;
  RequestPtr req, abandoned;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& members = group->members;
    auto it = std::find_if(members.begin(), members.end(),
                           [member](const Member& m) { return m.req.get() == member; });
    if (it == members.end()) return;
    req = std::move(it->req);
    members.erase(it);
    --waiting;
    if (members.empty()) {
      abandoned = group->carrier;
      End(group);
    }
  }
  if (abandoned) Abandon(abandoned);
  const double waited_ms = ToMillis(options.executor->clock().Now() - req->arrival);
  req->Complete(Failed(DeadlineExceeded("deadline passed after " +
                                        std::to_string(static_cast<int64_t>(waited_ms)) +
                                        " ms, waiting for the answer of an identical request")));
}

Result<std::unique_ptr<RequestCollapser>> RequestCollapser::Create(const Options& options) {
  if (options.queue == nullptr) return InvalidArgument("request collapser: no queue");
  if (options.executor == nullptr) return InvalidArgument("request collapser: no executor");
  return std::unique_ptr<RequestCollapser>(new RequestCollapser(options));
}

RequestCollapser::RequestCollapser(const Options& options) : shared_(std::make_shared<Shared>()) {
  shared_->options = options;
}

RequestCollapser::~RequestCollapser() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (auto& [key, groups] : shared_->by_key) {
    for (const GroupPtr& g : groups) {
      for (const Member& m : g->members) shared_->options.executor->Cancel(m.timer);
    }
  }
}

bool RequestCollapser::Shared::MayJoin(const Group& group, const InferenceRequest& req) const {
  if (!group.joinable) return false;
  const InferenceRequest& carrier = *group.carrier;
  if (carrier.dispatched()) return true;
  // Never wait behind a carrier that the queue would serve after `req`.
  if (options.ordering == QueueOrdering::kStrictPriority &&
      carrier.principal.tier != req.principal.tier) {
    return false;
  }
  return req.queue_order() >= carrier.queue_order();
}

bool RequestCollapser::TryJoin(const RequestPtr& req, const std::function<void()>& admit) {
  Shared& s = *shared_;
  std::lock_guard<std::mutex> lock(s.mu);
  // Withdraw() cancels before it calls Leave(): a request seen here
  // uncancelled is found by that Leave() once it is a member.
  if (req->cancelled()) return false;
  auto it = s.by_key.find(req->cache_key);
  if (it == s.by_key.end()) return false;
  const GroupPtr group = s.JoinableFor(it->second, *req);
  if (group == nullptr) return false;
  admit();
  s.AddMember(group, req);
  return true;
}

Status RequestCollapser::Start(const RequestPtr& req) {
  Shared& s = *shared_;
  GroupPtr group;
  RequestPtr carrier;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (req->cancelled()) {
      return Status(ErrorCode::kCancelled,
                    "client closed the connection; request dropped before the accelerator");
    }
    std::vector<GroupPtr>& groups = s.by_key[req->cache_key];
    if (const GroupPtr joinable = s.JoinableFor(groups, *req)) {
      s.AddMember(joinable, req);
      return Status::Ok();
    }
    group = std::make_shared<Group>();
    group->key = req->cache_key;
    carrier = s.MakeCarrier(group, *req);
    groups.push_back(group);
    ++s.live;
    s.AddMember(group, req);
  }
  return s.PushCarrier(group, carrier, req.get());
}

bool RequestCollapser::Leave(const RequestPtr& req) {
  Shared& s = *shared_;
  RequestPtr abandoned;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.by_key.find(req->cache_key);
    if (it == s.by_key.end()) return false;
    GroupPtr group;
    for (const GroupPtr& g : it->second) {
      auto m = std::find_if(g->members.begin(), g->members.end(),
                            [&req](const Member& x) { return x.req == req; });
      if (m == g->members.end()) continue;
      s.options.executor->Cancel(m->timer);
      g->members.erase(m);
      --s.waiting;
      group = g;
      break;
    }
    if (!group) return false;
    if (group->members.empty()) {
      abandoned = group->carrier;
      s.End(group);
    }
  }
  if (abandoned) s.Abandon(abandoned);
  InferenceOutcome o;
  o.status = Status(ErrorCode::kCancelled,
                    "client closed the connection; request dropped before the accelerator");
  req->Complete(std::move(o));
  return true;
}

uint64_t RequestCollapser::collapsed() const {
  return shared_->collapsed.load(std::memory_order_relaxed);
}

size_t RequestCollapser::groups() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->live;
}

size_t RequestCollapser::waiting() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->waiting;
}

}  // namespace sluice
