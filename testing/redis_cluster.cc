#include "testing/redis_cluster.h"

#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Single-quoted for sh -c.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Result<std::string> Run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return Internal("popen failed: " + command);
  std::string out;
  char buf[4096];
  for (int i = 0; i < 100'000; ++i) {
    const size_t n = std::fread(buf, 1, sizeof(buf), pipe);
    if (n == 0) break;
    out.append(buf, n);
  }
  const int rc = ::pclose(pipe);
  if (rc != 0) return Internal("'" + command + "' failed (" + std::to_string(rc) + "): " + out);
  return out;
}

}  // namespace

RedisCluster::RedisCluster(Options options) : options_(options) {}

std::vector<std::string> RedisCluster::Addresses() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back("127.0.0.1:" + std::to_string(n->port()));
  return out;
}

int RedisCluster::IndexOfPort(uint16_t port) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->port() == port) return static_cast<int>(i);
  }
  return -1;
}

Status RedisCluster::Start() {
  if (options_.masters < 3 || options_.masters > 16 || options_.replicas_per_master < 0 ||
      options_.replicas_per_master > 2) {
    return InvalidArgument("RedisCluster: 3..16 masters and 0..2 replicas per master");
  }
  const int total = options_.masters * (1 + options_.replicas_per_master);
  for (int i = 0; i < total; ++i) {
    RedisServerOptions o;
    o.cluster_enabled = true;
    o.cluster_node_timeout_ms = options_.node_timeout_ms;
    nodes_.push_back(std::make_unique<RedisServer>(o));
    if (Status s = nodes_.back()->Start(); !s.ok()) return s;
  }
  std::string command = "redis-cli --cluster create";
  for (const std::string& a : Addresses()) command += " " + a;
  command +=
      " --cluster-replicas " + std::to_string(options_.replicas_per_master) + " --cluster-yes 2>&1";
  if (Result<std::string> r = Run(command); !r.ok()) return r.status();
  if (!WaitUntilOk(options_.ready_timeout)) {
    return DeadlineExceeded("redis cluster did not reach cluster_state:ok");
  }
  return Status::Ok();
}

bool RedisCluster::WaitUntilOk(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    bool ok = true;
    std::set<std::string> views;  // each node's view of the masters' slots
    for (size_t i = 0; i < nodes_.size() && ok; ++i) {
      if (!nodes_[i]->running()) continue;
      Result<std::string> info = Cli(i, {"CLUSTER", "INFO"});
      ok = info.ok() && info->find("cluster_state:ok") != std::string::npos &&
           info->find("cluster_slots_ok:16384") != std::string::npos;
      if (!ok) break;
      // A replica counts once its link to its master is up (synced).
      Result<std::string> repl = Cli(i, {"INFO", "replication"});
      ok = repl.ok() && (repl->find("role:master") != std::string::npos ||
                         repl->find("master_link_status:up") != std::string::npos);
      if (!ok) break;
      // CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> <ping> <pong>
      // <epoch> <link> <slot ranges...>" per line. Every master that holds
      // slots must be a running node, not flagged failing.
      Result<std::string> nodes = Cli(i, {"CLUSTER", "NODES"});
      ok = nodes.ok();
      if (!ok) break;
      std::istringstream in(*nodes);
      std::string line;
      std::set<std::string> masters;
      while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, address, flags, master, ping, pong, epoch, link, range, slots;
        fields >> id >> address >> flags >> master >> ping >> pong >> epoch >> link;
        while (fields >> range) slots += range + " ";
        if (flags.find("master") == std::string::npos || slots.empty()) continue;
        const size_t colon = address.find(':');
        const int port = std::atoi(address.c_str() + (colon == std::string::npos ? 0 : colon + 1));
        const int index = IndexOfPort(static_cast<uint16_t>(port));
        if (flags.find("fail") != std::string::npos || index < 0 ||
            !nodes_[static_cast<size_t>(index)]->running()) {
          ok = false;
        }
        masters.insert(std::to_string(port) + ":" + slots);
      }
      std::string view;
      for (const std::string& m : masters) view += m + ";";
      views.insert(view);
    }
    if (ok && views.size() == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

Result<std::string> RedisCluster::Cli(size_t i, const std::vector<std::string>& args) const {
  std::string command = "redis-cli -p " + std::to_string(nodes_[i]->port());
  for (const std::string& a : args) command += " " + Quote(a);
  return Run(command + " 2>&1");
}

}  // namespace sluice::testing
