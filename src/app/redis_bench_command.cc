#include "app/redis_bench_command.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common/ids.h"
#include "redis/batch_claimer.h"
#include "redis/connection.h"
#include "redis/queue_client.h"

namespace sluice {
namespace {

// Request n's input: `bytes` letters from a generator seeded with n, so that
// inputs differ as live traffic's do. (Lua interns every string a script
// sees, hashing at most 32 sampled bytes of a long one: identical inputs put
// every entry into one hash chain and inflate what the scripts cost.)
std::string BenchInput(int64_t n, size_t bytes) {
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(n + 1);
  std::string s(bytes, 'a');
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  return s;
}

// Redis's CPU seconds so far (INFO cpu), or a negative value on failure.
double RedisCpuSeconds(redis::RedisConnection& c) {
  redis::ReplyResult r = c.Call({"INFO", "cpu"});
  if (!r.ok() || r->is_error()) return -1;
  double total = 0;
  std::istringstream in(r->str);
  std::string line;
  while (std::getline(in, line)) {
    for (const char* field : {"used_cpu_user:", "used_cpu_sys:"}) {
      if (line.rfind(field, 0) == 0) total += std::stod(line.substr(std::string(field).size()));
    }
  }
  return total;
}

std::vector<TierPolicy> BenchTiers() {
  std::vector<TierPolicy> tiers(3);
  const char* names[] = {"free", "paid", "enterprise"};
  for (size_t i = 0; i < tiers.size(); ++i) {
    tiers[i].name = names[i];
    tiers[i].priority = static_cast<int>(i);
  }
  return tiers;
}

// Counts outstanding asynchronous calls; Wait() blocks until at most `n`.
class InFlight {
 public:
  void Add() {
    std::lock_guard lock(mu_);
    ++count_;
  }
  void Done() {
    std::lock_guard lock(mu_);
    --count_;
    cv_.notify_all();
  }
  void WaitAtMost(int64_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return count_ <= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t count_ = 0;
};

struct PhaseCost {
  double enqueue_s = 0;
  double drain_s = 0;
  int64_t refused = 0;  // enqueue answers other than OK (should be 0)
  int64_t answered = 0;
};

}  // namespace

std::unique_ptr<RedisBenchCommand> RedisBenchCommand::Register(CLI::App& app) {
  std::unique_ptr<RedisBenchCommand> c(new RedisBenchCommand());
  c->command_ = app.add_subcommand(
      "bench-redis",
      "Measure Redis's own CPU per request for the scale-out scripts, by batch size.");
  CLI::App* s = c->command_;
  s->add_option("--host", c->host_, "Redis host")->capture_default_str();
  s->add_option("--port", c->port_, "Redis port")->required()->check(CLI::Range(1, 65535));
  s->add_option("--batches", c->batches_, "Enqueue batch sizes, comma-separated (1..1000)")
      ->capture_default_str();
  s->add_option("--requests", c->requests_, "Requests per batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}));
  s->add_option("--claim-batch", c->claim_batch_, "Requests per claim")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  s->add_option("--keys", c->keys_, "API keys the requests spread over (0 = no rate limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  s->add_option("--in-flight", c->in_flight_, "Enqueue calls in flight at once")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  s->add_option("--queue-depth", c->queue_depth_,
                "Steady state: enqueue while fewer than this many wait, claim down to half "
                "(0 = enqueue all, then drain)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  s->add_option("--payload-bytes", c->payload_bytes_, "Input bytes per request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  return c;
}

bool RedisBenchCommand::selected() const { return command_->parsed(); }

int RedisBenchCommand::Run() {
  std::vector<int64_t> batches;
  {
    std::istringstream in(batches_);
    std::string item;
    while (std::getline(in, item, ',')) {
      try {
        const int64_t b = std::stoll(item);
        if (b < 1 || b > 1'000) throw std::out_of_range("batch");
        batches.push_back(b);
      } catch (const std::exception&) {
        std::fprintf(stderr, "sluice bench-redis: --batches: bad size '%s' (1..1000)\n",
                     item.c_str());
        return 2;
      }
    }
  }
  redis::RedisConnection::Options co;
  co.host = host_;
  co.port = port_;
  co.command_timeout_ms = 10'000;
  co.client_name = "sluice-bench-redis";
  auto connection = redis::RedisConnection::Create(co);
  if (!connection.ok() || !(*connection)->WaitUntilUp(std::chrono::seconds(5))) {
    std::fprintf(stderr, "sluice bench-redis: cannot reach Redis at %s:%d\n", host_.c_str(), port_);
    return 1;
  }
  redis::RedisConnection& conn = **connection;
  const std::string model = "bench";

  std::printf(
      "| enqueue batch | claim batch | deepest queue | requests | keys | Redis µs/req enqueue | "
      "Redis µs/req claim + complete | Redis µs/req total | req/s per Redis core |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int64_t batch : batches) {
    const redis::KeySpace keys("sluice-bench-" + std::to_string(::getpid()) + "-" +
                               std::to_string(batch));
    redis::RedisQueueClient::Options qo;
    qo.connection = &conn;
    qo.keys = keys;
    qo.tier_count = 3;
    qo.capacity = 0;  // unbounded: every request is queued
    auto client = std::move(redis::RedisQueueClient::Create(qo)).value();
    redis::RedisBatchClaimer::Options bo;
    bo.connection = &conn;
    bo.keys = keys;
    bo.model = model;
    bo.tiers = BenchTiers();
    auto claimer = redis::RedisBatchClaimer::Create(bo);
    if (!claimer.ok()) {
      std::fprintf(stderr, "sluice bench-redis: %s\n", claimer.status().message().c_str());
      return 1;
    }

    PhaseCost cost;
    std::mutex mu;
    InFlight in_flight;
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    // One enqueue call of up to `batch` requests, numbered from `sent`
    // (pipelined: at most --in-flight calls outstanding); returns the new
    // `sent`.
    auto enqueue_call = [&](int64_t sent) {
      std::vector<redis::RedisQueueClient::EnqueueItem> items;
      for (int64_t i = 0; i < batch && sent < requests_; ++i, ++sent) {
        redis::RedisQueueClient::EnqueueItem item;
        redis::WireRequest& r = item.request;
        r.id = NewRequestId();
        r.gateway_id = "bench-gw";
        r.key_id = keys_ > 0 ? "key-" + std::to_string(sent % keys_) : "key";
        r.tier = static_cast<uint32_t>(sent % 3);
        r.tier_name = BenchTiers()[r.tier].name;
        r.model = model;
        r.input = BenchInput(sent, static_cast<size_t>(payload_bytes_));
        r.arrival_us = now_us + sent;
        r.dispatch_deadline_us = now_us + 600'000'000 + sent;  // never expires during the run
        r.total_deadline_us = r.dispatch_deadline_us;
        r.charged_tokens = 20;
        if (keys_ > 0) {
          item.options.rate_limit = redis::RedisQueueClient::RateLimitCheck{
              r.key_id, RateLimitPolicy{1'000'000'000, 0}, 20};
        }
        item.done = [&cost, &mu](redis::RedisQueueClient::EnqueueResult res) {
          if (res.status.ok()) return;
          std::lock_guard lock(mu);
          ++cost.refused;
        };
        items.push_back(std::move(item));
      }
      in_flight.WaitAtMost(in_flight_ - 1);
      in_flight.Add();
      // The last item's answer ends the call: all of a call's answers run
      // in one callback, in order.
      auto last = std::move(items.back().done);
      items.back().done = [last = std::move(last),
                           &in_flight](redis::RedisQueueClient::EnqueueResult res) {
        last(std::move(res));
        in_flight.Done();
      };
      client->EnqueueBatch(std::move(items));
      return sent;
    };
    // One claim of up to --claim-batch requests and its completion
    // (pipelined as the enqueues are); returns how many it claimed, or -1
    // when the claim failed or found nothing.
    redis::RedisBatchClaimer::ClaimOptions claim;
    claim.max_batch = static_cast<size_t>(claim_batch_);
    size_t deepest = 0;  // the most requests queued at a claim, as Redis said
    auto claim_and_complete = [&](int64_t claimed) -> int64_t {
      Result<redis::RedisBatchClaimer::Batch> b = (*claimer)->TryClaim(claim);
      if (!b.ok() || b->empty()) {
        std::fprintf(stderr, "sluice bench-redis: claim stopped after %lld: %s\n",
                     static_cast<long long>(claimed),
                     b.ok() ? "queue empty" : b.status().message().c_str());
        return -1;
      }
      deepest = std::max(deepest, b->depth + b->requests.size() + b->expired.size());
      std::vector<redis::WireResult> results;
      for (const redis::WireRequest& r : b->requests) {
        redis::WireResult w;
        w.id = r.id;
        w.output = "ok";
        w.tokens_used = 5;
        w.queue_tier = static_cast<int32_t>(r.tier);
        w.owner_gateway_id = r.gateway_id;
        w.lease = r.lease;
        w.first_attempt = r.attempts == 0;
        w.charged_key_id = r.key_id;
        w.charged_tokens = r.charged_tokens;
        w.tokens_per_minute = r.tokens_per_minute;
        results.push_back(std::move(w));
      }
      in_flight.WaitAtMost(in_flight_ - 1);
      in_flight.Add();
      (*claimer)->CompleteAsync(results, [&](Result<redis::RedisBatchClaimer::CompleteResult> r) {
        {
          std::lock_guard lock(mu);
          if (r.ok()) cost.answered += static_cast<int64_t>(r->answered);
        }
        in_flight.Done();
      });
      return static_cast<int64_t>(results.size());
    };
    double cpu0 = RedisCpuSeconds(conn);
    double cpu1 = -1;
    int64_t sent = 0;
    int64_t claimed = 0;
    if (queue_depth_ == 0) {
      // Two phases: everything is enqueued, then drained.
      while (sent < requests_) sent = enqueue_call(sent);
      in_flight.WaitAtMost(0);
      cpu1 = RedisCpuSeconds(conn);
      while (claimed < requests_) {
        const int64_t c = claim_and_complete(claimed);
        if (c < 0) return 1;
        claimed += c;
      }
    } else {
      // Steady state: enqueue until --queue-depth requests wait, then claim
      // until at most half that many do.
      while (claimed < requests_) {
        while (sent < requests_ && sent - claimed < queue_depth_) sent = enqueue_call(sent);
        in_flight.WaitAtMost(0);
        while (claimed < requests_ && (sent - claimed > queue_depth_ / 2 || sent == requests_)) {
          const int64_t c = claim_and_complete(claimed);
          if (c < 0) return 1;
          claimed += c;
        }
      }
    }
    in_flight.WaitAtMost(0);
    double cpu2 = RedisCpuSeconds(conn);
    std::vector<std::string> del = {"DEL", keys.Payloads(model), keys.Leases(model),
                                    keys.Batches(model), keys.Wake(model)};
    for (size_t t = 0; t < 3; ++t) del.push_back(keys.Queue(model, t));
    (void)conn.Call(std::move(del));
    (void)conn.Call({"DEL", keys.RateLimits()});
    const bool phases = queue_depth_ == 0;
    if (cpu0 < 0 || (phases && cpu1 < 0) || cpu2 < 0 || cost.refused > 0 ||
        cost.answered != requests_) {
      std::fprintf(stderr, "sluice bench-redis: run failed (refused %lld, answered %lld of %lld)\n",
                   static_cast<long long>(cost.refused), static_cast<long long>(cost.answered),
                   static_cast<long long>(requests_));
      return 1;
    }
    const double n = static_cast<double>(requests_);
    const double total_us = (cpu2 - cpu0) * 1e6 / n;
    // In steady state the phases interleave: only the total is measured.
    const std::string enqueue_us = phases ? fmt::format("{:.2f}", (cpu1 - cpu0) * 1e6 / n) : "—";
    const std::string drain_us = phases ? fmt::format("{:.2f}", (cpu2 - cpu1) * 1e6 / n) : "—";
    std::printf("| %lld | %lld | %zu | %lld | %lld | %s | %s | %.2f | %.0f |\n",
                static_cast<long long>(batch), static_cast<long long>(claim_batch_), deepest,
                static_cast<long long>(requests_), static_cast<long long>(keys_),
                enqueue_us.c_str(), drain_us.c_str(), total_us,
                total_us > 0 ? 1e6 / total_us : 0.0);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace sluice
