#include "redis/cluster_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

#include "common/thread_name.h"
#include "redis/hash_slot.h"

namespace sluice::redis {
namespace {

using SteadyTime = std::chrono::steady_clock;

// True on a thread while it runs a reply callback of this client (a node
// connection's thread): a blocking call there would wait on itself.
thread_local bool in_callback = false;

// Commands whose first argument is not a key: sent to any master.
bool Keyless(const std::string& command) {
  static const std::set<std::string> kKeyless = {
      "PING",    "INFO",   "PUBLISH", "TIME",    "ECHO",   "DBSIZE",  "FLUSHALL", "FLUSHDB",
      "CLUSTER", "CLIENT", "CONFIG",  "COMMAND", "SCRIPT", "SLOWLOG", "MEMORY",   "LATENCY"};
  std::string upper = command;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return kKeyless.count(upper) > 0;
}

// "host:port" -> host, port; false when it does not parse.
bool SplitAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const char* first = address.data() + colon + 1;
  const char* last = address.data() + address.size();
  auto [end, ec] = std::from_chars(first, last, *port);
  if (ec != std::errc() || end != last || *port < 1 || *port > 65535) return false;
  *host = address.substr(0, colon);
  return true;
}

// "MOVED 3999 127.0.0.1:6381" / "ASK ..." -> slot, address.
bool ParseRedirect(const std::string& error, int* slot, std::string* address) {
  const size_t a = error.find(' ');
  const size_t b = a == std::string::npos ? a : error.find(' ', a + 1);
  if (b == std::string::npos) return false;
  auto [end, ec] = std::from_chars(error.data() + a + 1, error.data() + b, *slot);
  if (ec != std::errc() || *slot < 0 || *slot >= kHashSlots) return false;
  *address = error.substr(b + 1);
  std::string host;
  int port = 0;
  return SplitAddress(*address, &host, &port);
}

// Adds a node connection's counters to `total` (the cluster's own
// counters, redirects and refreshes, are not a connection's).
void AddConnectionCounters(const RedisClient::Stats& n, RedisClient::Stats* total) {
  total->commands_sent += n.commands_sent;
  total->pipelines += n.pipelines;
  total->error_replies += n.error_replies;
  total->io_errors += n.io_errors;
  total->reconnects += n.reconnects;
  total->rejected_while_down += n.rejected_while_down;
  total->scripts_reloaded += n.scripts_reloaded;
  total->callback_exceptions += n.callback_exceptions;
}

timeval ToTimeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

struct SlotRange {
  int first = 0;
  int last = 0;
  std::string master;  // host:port
};

// CLUSTER SLOTS from `address` (a short-lived blocking connection); empty
// with *error set when it cannot be read.
std::vector<SlotRange> ReadSlots(const std::string& address, const RedisConnection::Options& o,
                                 std::string* error) {
  std::string host;
  int port = 0;
  if (!SplitAddress(address, &host, &port)) {
    *error = "bad address " + address;
    return {};
  }
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, ToTimeval(o.connect_timeout_ms));
  if (c == nullptr || c->err != 0) {
    *error = c == nullptr ? "cannot allocate a hiredis context" : c->errstr;
    if (c != nullptr) redisFree(c);
    return {};
  }
  redisSetTimeout(c, ToTimeval(o.command_timeout_ms));
  std::vector<SlotRange> ranges;
  if (Authenticate(c, o.username, o.password, error)) {
    auto* raw = static_cast<redisReply*>(redisCommand(c, "CLUSTER SLOTS"));
    if (raw == nullptr) {
      *error = c->errstr;
    } else {
      const RedisReply reply = RedisReply::FromHiredis(raw);
      freeReplyObject(raw);
      if (reply.type != RedisReply::Type::kArray) {
        *error = "CLUSTER SLOTS: " + reply.DebugString();
      }
      for (const RedisReply& r : reply.elements) {
        if (r.elements.size() < 3 || r.elements[2].elements.size() < 2) continue;
        const RedisReply& node = r.elements[2];
        SlotRange range;
        range.first = static_cast<int>(r.elements[0].AsInt().value_or(-1));
        range.last = static_cast<int>(r.elements[1].AsInt().value_or(-1));
        // An empty host means "the address you reached me at".
        const std::string node_host = node.elements[0].str.empty() ? host : node.elements[0].str;
        range.master = node_host + ":" + std::to_string(node.elements[1].AsInt().value_or(0));
        if (range.first < 0 || range.last >= kHashSlots || range.first > range.last) continue;
        ranges.push_back(std::move(range));
      }
    }
  }
  redisFree(c);
  return ranges;
}

}  // namespace

struct RedisClusterClient::Command {
  const LuaScript* script = nullptr;  // a script (keys, args) or a command (argv)
  std::vector<std::string> argv;
  std::vector<std::string> keys;
  std::vector<std::string> args;
  ReplyCallback done;
  int redirects = 0;
};

Result<std::unique_ptr<RedisClusterClient>> RedisClusterClient::Create(Options options) {
  if (options.seeds.empty()) return InvalidArgument("redis.cluster_nodes: must not be empty");
  for (const std::string& seed : options.seeds) {
    std::string host;
    int port = 0;
    if (!SplitAddress(seed, &host, &port)) {
      return InvalidArgument("redis.cluster_nodes: '" + seed + "' is not host:port");
    }
  }
  if (options.refresh_interval_ms <= 0) {
    return InvalidArgument("redis cluster: refresh_interval_ms must be > 0");
  }
  if (options.periodic_refresh_ms < options.refresh_interval_ms) {
    return InvalidArgument("redis cluster: periodic_refresh_ms must be >= refresh_interval_ms");
  }
  if (options.max_redirects < 1 || options.max_redirects > 16) {
    return InvalidArgument("redis cluster: max_redirects must be in 1..16");
  }
  // The node options are checked as one connection's would be.
  RedisConnection::Options probe = options.node;
  SplitAddress(options.seeds[0], &probe.host, &probe.port);
  if (Status s = RedisConnection::Validate(probe); !s.ok()) return s;
  std::unique_ptr<RedisClusterClient> client(new RedisClusterClient(std::move(options)));
  client->refresh_thread_ = std::thread([c = client.get()] {
    SetCurrentThreadName("redis-slots");
    c->RefreshLoop();
  });
  return client;
}

RedisClusterClient::RedisClusterClient(Options options)
    : options_(std::move(options)), slot_node_(kHashSlots, -1) {}

RedisClusterClient::~RedisClusterClient() {
  {
    std::lock_guard lock(mu_);
    stopping_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  if (refresh_thread_.joinable()) refresh_thread_.join();
  // Closing a node fails what it holds; those callbacks see stopping_ and
  // only deliver.
  std::map<std::string, NodePtr> nodes;
  std::vector<NodePtr> retired;
  {
    std::lock_guard lock(mu_);
    nodes.swap(nodes_);
    retired.swap(retired_);
  }
  nodes.clear();
  retired.clear();
}

void RedisClusterClient::Submit(std::vector<std::string> argv, ReplyCallback done) {
  auto command = std::make_shared<Command>();
  command->argv = std::move(argv);
  command->done = std::move(done);
  Dispatch(command, Route(*command), false);
}

void RedisClusterClient::RunScript(const LuaScript& script, std::vector<std::string> keys,
                                   std::vector<std::string> args, ReplyCallback done) {
  auto command = std::make_shared<Command>();
  command->script = &script;
  command->keys = std::move(keys);
  command->args = std::move(args);
  command->done = std::move(done);
  Dispatch(command, Route(*command), false);
}

RedisClusterClient::NodePtr RedisClusterClient::Route(const Command& command) {
  const std::string* key = nullptr;
  if (command.script != nullptr) {
    if (!command.keys.empty()) key = &command.keys[0];
  } else if (command.argv.size() > 1 && !Keyless(command.argv[0])) {
    key = &command.argv[1];
  }
  std::lock_guard lock(mu_);
  if (key == nullptr) {  // any master that is up, else any
    NodePtr any;
    for (const std::string& address : addresses_) {
      auto it = nodes_.find(address);
      if (it == nodes_.end()) continue;
      if (it->second->state() != State::kDown) return it->second;
      any = it->second;
    }
    return any;
  }
  const int index = slot_node_[static_cast<size_t>(KeySlot(*key))];
  if (index < 0) return nullptr;
  return NodeLocked(addresses_[static_cast<size_t>(index)]);
}

RedisClusterClient::NodePtr RedisClusterClient::NodeLocked(const std::string& address) {
  if (stopping_.load(std::memory_order_acquire)) return nullptr;  // no new connections
  auto it = nodes_.find(address);
  if (it != nodes_.end()) return it->second;
  RedisConnection::Options o = options_.node;
  if (!SplitAddress(address, &o.host, &o.port)) return nullptr;
  Result<std::unique_ptr<RedisConnection>> c = RedisConnection::Create(o);
  if (!c.ok()) return nullptr;
  NodePtr node(std::move(c).value());
  nodes_.emplace(address, node);
  return node;
}

void RedisClusterClient::Dispatch(const std::shared_ptr<Command>& command, const NodePtr& node,
                                  bool asking) {
  if (stopping_.load(std::memory_order_acquire)) {
    command->done(Unavailable("redis cluster client closed"));
    return;
  }
  if (node == nullptr) {
    RequestRefresh();
    command->done(Unavailable("redis cluster: no master known for the command's slot"));
    return;
  }
  auto on_reply = [this, command](ReplyResult reply) { OnReply(command, std::move(reply)); };
  if (command->script == nullptr) {
    if (asking) {
      node->SubmitAsking(command->argv, std::move(on_reply));
    } else {
      node->Submit(command->argv, std::move(on_reply));
    }
    return;
  }
  if (!asking) {
    node->RunScript(*command->script, command->keys, command->args, std::move(on_reply));
    return;
  }
  // The importing node may not have the script cached: send the body.
  std::vector<std::string> argv = {"EVAL", command->script->body(),
                                   std::to_string(command->keys.size())};
  argv.insert(argv.end(), command->keys.begin(), command->keys.end());
  argv.insert(argv.end(), command->args.begin(), command->args.end());
  node->SubmitAsking(std::move(argv), std::move(on_reply));
}

void RedisClusterClient::OnReply(const std::shared_ptr<Command>& command, ReplyResult reply) {
  // Marks this thread as a node's callback thread (see Call()).
  struct InCallback {
    InCallback() { in_callback = true; }
    ~InCallback() { in_callback = false; }
  } marked;
  const bool stopping = stopping_.load(std::memory_order_acquire);
  if (!reply.ok()) {
    if (reply.status().code() == ErrorCode::kUnavailable && !stopping) RequestRefresh();
    command->done(std::move(reply));
    return;
  }
  if (!reply->is_error() || stopping) {
    command->done(std::move(reply));
    return;
  }
  const std::string& error = reply->str;
  const bool moved = error.starts_with("MOVED ");
  const bool ask = error.starts_with("ASK ");
  if (moved || ask) {
    int slot = 0;
    std::string address;
    if (!ParseRedirect(error, &slot, &address)) {
      command->done(std::move(reply));
      return;
    }
    if (++command->redirects > options_.max_redirects) {
      command->done(Unavailable("redis cluster: more than " +
                                std::to_string(options_.max_redirects) +
                                " redirects (last: " + error + ")"));
      return;
    }
    redirects_.fetch_add(1, std::memory_order_relaxed);
    NodePtr target;
    {
      std::lock_guard lock(mu_);
      target = NodeLocked(address);
      if (moved) {
        auto it = std::find(addresses_.begin(), addresses_.end(), address);
        if (it == addresses_.end()) it = addresses_.insert(addresses_.end(), address);
        slot_node_[static_cast<size_t>(slot)] = static_cast<int>(it - addresses_.begin());
      }
    }
    if (moved) RequestRefresh();
    Dispatch(command, target, ask);
    return;
  }
  if (error.starts_with("TRYAGAIN") || error.starts_with("CLUSTERDOWN")) {
    RequestRefresh();
    command->done(Unavailable("redis cluster: " + error));
    return;
  }
  command->done(std::move(reply));
}

ReplyResult RedisClusterClient::Call(std::vector<std::string> argv) {
  if (in_callback) return Internal("redis cluster: blocking call from a reply callback");
  return WaitForReply([&](ReplyCallback done) { Submit(std::move(argv), std::move(done)); },
                      reply_wait_limit());
}

ReplyResult RedisClusterClient::CallScript(const LuaScript& script, std::vector<std::string> keys,
                                           std::vector<std::string> args) {
  if (in_callback) return Internal("redis cluster: blocking call from a reply callback");
  return WaitForReply(
      [&](ReplyCallback done) {
        RunScript(script, std::move(keys), std::move(args), std::move(done));
      },
      reply_wait_limit());
}

bool RedisClusterClient::WaitUntilUp(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyTime::now() + timeout;
  for (;;) {
    if (state() == State::kUp) return true;
    std::unique_lock lock(mu_);
    // Woken by a new map; node connections coming up are polled.
    cv_.wait_until(lock, std::min(deadline, SteadyTime::now() + std::chrono::milliseconds(20)));
    if (SteadyTime::now() >= deadline) {
      lock.unlock();
      return state() == State::kUp;
    }
  }
}

RedisClient::State RedisClusterClient::state() const {
  std::lock_guard lock(mu_);
  if (!map_read_) return State::kConnecting;
  if (std::find(slot_node_.begin(), slot_node_.end(), -1) != slot_node_.end()) return State::kDown;
  for (const std::string& address : addresses_) {
    auto it = nodes_.find(address);
    if (it == nodes_.end()) continue;  // opened on first use
    if (it->second->state() == State::kDown) return State::kDown;
  }
  return State::kUp;
}

RedisClient::Stats RedisClusterClient::stats() const {
  std::lock_guard lock(mu_);
  Stats s = retired_stats_;
  for (const auto& [address, node] : nodes_) AddConnectionCounters(node->stats(), &s);
  s.redirects = redirects_.load(std::memory_order_relaxed);
  s.slot_map_refreshes = refreshes_.load(std::memory_order_relaxed);
  return s;
}

std::chrono::milliseconds RedisClusterClient::reply_wait_limit() const {
  const RedisConnection::Options& o = options_.node;
  return std::chrono::milliseconds(o.connect_timeout_ms + 2 * o.command_timeout_ms + 1'000);
}

Result<std::unique_ptr<RedisClient>> RedisClusterClient::NewBlockingClient(
    const std::string& name_suffix, int64_t command_timeout_ms) const {
  Options o = options_;
  o.node.command_timeout_ms = std::max(o.node.command_timeout_ms, command_timeout_ms);
  o.node.health_check_interval_ms = 0;
  if (!o.node.client_name.empty()) o.node.client_name += name_suffix;
  {
    std::lock_guard lock(mu_);  // the masters known now first, then the seeds
    o.seeds.insert(o.seeds.begin(), addresses_.begin(), addresses_.end());
  }
  Result<std::unique_ptr<RedisClusterClient>> c = Create(std::move(o));
  if (!c.ok()) return c.status();
  // Its first command (a BLPOP) needs the slot map: wait for it, briefly.
  (*c)->WaitUntilUp(std::chrono::milliseconds(options_.node.connect_timeout_ms));
  return std::unique_ptr<RedisClient>(std::move(c).value());
}

std::string RedisClusterClient::MasterOf(int slot) const {
  std::lock_guard lock(mu_);
  if (slot < 0 || slot >= kHashSlots) return {};
  const int index = slot_node_[static_cast<size_t>(slot)];
  return index < 0 ? std::string() : addresses_[static_cast<size_t>(index)];
}

void RedisClusterClient::RequestRefresh() {
  {
    std::lock_guard lock(mu_);
    if (refresh_wanted_) return;
    refresh_wanted_ = true;
  }
  cv_.notify_all();
}

void RedisClusterClient::RefreshLoop() {
  const auto min_gap = std::chrono::milliseconds(options_.refresh_interval_ms);
  const auto period = std::chrono::milliseconds(options_.periodic_refresh_ms);
  auto last = SteadyTime::now() - period;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // Without a complete map, read again every min_gap until there is one.
      const auto next =
          map_read_ && std::find(slot_node_.begin(), slot_node_.end(), -1) == slot_node_.end()
              ? last + period
              : last + min_gap;
      cv_.wait_until(lock, next, [&] { return stopping_ || refresh_wanted_; });
      if (stopping_) return;
      // Refresh no more often than min_gap, however often it is asked for.
      if (SteadyTime::now() < last + min_gap) {
        cv_.wait_until(lock, last + min_gap, [&] { return stopping_.load(); });
        if (stopping_) return;
      }
      refresh_wanted_ = false;
    }
    last = SteadyTime::now();
    const bool read = Refresh();
    // A down master stays in the map until its replica is promoted: keep
    // reading until every master is reachable again.
    if (read && state() == State::kDown) RequestRefresh();
    // Close retired connections nobody else holds (never from their own
    // thread: only this thread drops the last reference).
    std::vector<NodePtr> closing;
    {
      std::lock_guard lock(mu_);
      for (auto it = retired_.begin(); it != retired_.end();) {
        if (it->use_count() == 1) {
          AddConnectionCounters((*it)->stats(), &retired_stats_);
          closing.push_back(std::move(*it));
          it = retired_.erase(it);
        } else {
          ++it;
        }
      }
    }
    closing.clear();
  }
}

bool RedisClusterClient::Refresh() {
  std::vector<std::string> candidates;
  {
    std::lock_guard lock(mu_);
    candidates = addresses_;
  }
  candidates.insert(candidates.end(), options_.seeds.begin(), options_.seeds.end());
  std::vector<SlotRange> ranges;
  std::set<std::string> tried;
  for (const std::string& address : candidates) {
    if (!tried.insert(address).second) continue;
    std::string error;
    ranges = ReadSlots(address, options_.node, &error);
    if (!ranges.empty()) break;
  }
  if (ranges.empty()) return false;

  std::vector<int> slots(kHashSlots, -1);
  std::vector<std::string> addresses;
  for (const SlotRange& r : ranges) {
    auto it = std::find(addresses.begin(), addresses.end(), r.master);
    if (it == addresses.end()) it = addresses.insert(addresses.end(), r.master);
    std::fill(slots.begin() + r.first, slots.begin() + r.last + 1,
              static_cast<int>(it - addresses.begin()));
  }
  {
    std::lock_guard lock(mu_);
    const bool changed = !map_read_ || addresses != addresses_ || slots != slot_node_;
    if (changed) refreshes_.fetch_add(1, std::memory_order_relaxed);
    slot_node_ = std::move(slots);
    addresses_ = std::move(addresses);
    map_read_ = true;
    for (const std::string& address : addresses_) NodeLocked(address);
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (std::find(addresses_.begin(), addresses_.end(), it->first) == addresses_.end()) {
        retired_.push_back(std::move(it->second));
        it = nodes_.erase(it);
      } else {
        ++it;
      }
    }
  }
  cv_.notify_all();
  return true;
}

}  // namespace sluice::redis
