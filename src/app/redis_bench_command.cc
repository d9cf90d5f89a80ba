#include "app/redis_bench_command.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <memory>
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

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One enqueue batch size's run: its keys, queue client and claimer, the
// calls in flight and what they answered. The destructor waits for every
// call in flight (their callbacks use this object) and deletes the keys, on
// success or failure alike.
class BatchSizeRun {
 public:
  struct Settings {
    int64_t batch = 1;        // requests per enqueue call
    int64_t claim_batch = 1;  // requests per claim
    int64_t requests = 1;
    int64_t keys = 0;  // API keys the requests spread over; 0 = no rate limit
    int64_t in_flight = 1;
    int64_t payload_bytes = 0;
    int64_t queue_depth = 0;  // 0 = enqueue all, then drain
  };
  // Redis CPU seconds (INFO cpu) at the run's three points; enqueued is
  // negative in steady state, where the phases interleave.
  struct Cpu {
    double start = -1;
    double enqueued = -1;
    double end = -1;
  };

  static std::unique_ptr<BatchSizeRun> Create(redis::RedisConnection& conn, const Settings& s) {
    std::unique_ptr<BatchSizeRun> run(new BatchSizeRun(conn, s));
    redis::RedisQueueClient::Options qo;
    qo.connection = &conn;
    qo.keys = run->keys_;
    qo.tier_count = 3;
    qo.capacity = 0;  // unbounded: every request is queued
    auto client = redis::RedisQueueClient::Create(qo);
    redis::RedisBatchClaimer::Options bo;
    bo.connection = &conn;
    bo.keys = run->keys_;
    bo.model = kModel;
    bo.tiers = BenchTiers();
    auto claimer = redis::RedisBatchClaimer::Create(bo);
    if (!client.ok() || !claimer.ok()) {
      std::fprintf(stderr, "sluice bench-redis: %s\n",
                   (client.ok() ? claimer.status() : client.status()).message().c_str());
      return nullptr;
    }
    run->client_ = std::move(client).value();
    run->claimer_ = std::move(claimer).value();
    return run;
  }

  ~BatchSizeRun() {
    in_flight_.WaitAtMost(0);
    std::vector<std::string> del = {"DEL", keys_.Payloads(kModel), keys_.Leases(kModel),
                                    keys_.Batches(kModel), keys_.Wake(kModel)};
    for (size_t t = 0; t < 3; ++t) del.push_back(keys_.Queue(kModel, t));
    (void)conn_.Call(std::move(del));
    (void)conn_.Call({"DEL", keys_.RateLimits()});
  }

  // Enqueues and drains every request; false (said on stderr) when a call
  // failed or a request was refused.
  bool Run(Cpu* cpu) {
    cpu->start = RedisCpuSeconds(conn_);
    // Enqueue until `depth` requests wait, then claim until at most half
    // that many do (or all, once everything was sent). Two phases are the
    // case depth = requests: everything is enqueued, then drained.
    const bool phases = s_.queue_depth == 0;
    const int64_t depth = phases ? s_.requests : s_.queue_depth;
    int64_t sent = 0;
    int64_t claimed = 0;
    while (claimed < s_.requests) {
      while (sent < s_.requests && sent - claimed < depth) sent = Enqueue(sent);
      if (!EnqueuesDone()) return false;
      if (phases) cpu->enqueued = RedisCpuSeconds(conn_);
      while (claimed < s_.requests && (sent - claimed > depth / 2 || sent == s_.requests)) {
        const int64_t c = ClaimAndComplete(claimed);
        if (c < 0) return false;
        claimed += c;
      }
    }
    in_flight_.WaitAtMost(0);
    cpu->end = RedisCpuSeconds(conn_);
    std::lock_guard lock(mu_);
    if (answered_ != s_.requests) {
      std::fprintf(stderr, "sluice bench-redis: %lld of %lld requests answered\n",
                   static_cast<long long>(answered_), static_cast<long long>(s_.requests));
      return false;
    }
    return true;
  }

  // The most requests queued at a claim, as the claim script counted them.
  size_t deepest() const { return deepest_; }

 private:
  static constexpr const char* kModel = "bench";

  BatchSizeRun(redis::RedisConnection& conn, const Settings& s)
      : conn_(conn),
        s_(s),
        keys_("sluice-bench-" + std::to_string(::getpid()) + "-" + std::to_string(s.batch)) {}

  // One enqueue call of up to `batch` requests, numbered from `sent`
  // (pipelined: at most in_flight calls outstanding); returns the new `sent`.
  int64_t Enqueue(int64_t sent) {
    std::vector<redis::RedisQueueClient::EnqueueItem> items;
    const int64_t now_us = WallMicros();
    for (int64_t i = 0; i < s_.batch && sent < s_.requests; ++i, ++sent) {
      redis::RedisQueueClient::EnqueueItem item;
      redis::WireRequest& r = item.request;
      r.id = NewRequestId();
      r.gateway_id = "bench-gw";
      r.key_id = s_.keys > 0 ? "key-" + std::to_string(sent % s_.keys) : "key";
      r.tier = static_cast<uint32_t>(sent % 3);
      r.tier_name = BenchTiers()[r.tier].name;
      r.model = kModel;
      r.input = BenchInput(sent, static_cast<size_t>(s_.payload_bytes));
      r.arrival_us = now_us;
      r.dispatch_deadline_us = now_us + 3'600'000'000;  // an hour: never expires in a run
      r.total_deadline_us = r.dispatch_deadline_us;
      r.charged_tokens = 20;
      if (s_.keys > 0) {
        item.options.rate_limit = redis::RedisQueueClient::RateLimitCheck{
            r.key_id, RateLimitPolicy{1'000'000'000, 0}, 20};
      }
      item.done = [this](redis::RedisQueueClient::EnqueueResult res) {
        if (res.status.ok()) return;
        std::lock_guard lock(mu_);
        if (refused_++ == 0) first_refusal_ = res.status.message();
      };
      items.push_back(std::move(item));
    }
    in_flight_.WaitAtMost(s_.in_flight - 1);
    in_flight_.Add();
    // The last item's answer ends the call: all of a call's answers run in
    // one callback, in order.
    auto last = std::move(items.back().done);
    items.back().done = [this, last = std::move(last)](redis::RedisQueueClient::EnqueueResult res) {
      last(std::move(res));
      in_flight_.Done();
    };
    client_->EnqueueBatch(std::move(items));
    return sent;
  }

  // Waits for the enqueue calls in flight; false (said) when one refused a
  // request.
  bool EnqueuesDone() {
    in_flight_.WaitAtMost(0);
    std::lock_guard lock(mu_);
    if (refused_ == 0) return true;
    std::fprintf(stderr, "sluice bench-redis: %lld requests refused (first: %s)\n",
                 static_cast<long long>(refused_), first_refusal_.c_str());
    return false;
  }

  // One claim of up to claim_batch requests and its completion (pipelined
  // as the enqueues are); returns how many it claimed, or -1 (said) when
  // the claim failed or found nothing.
  int64_t ClaimAndComplete(int64_t claimed) {
    redis::RedisBatchClaimer::ClaimOptions claim;
    claim.max_batch = static_cast<size_t>(s_.claim_batch);
    Result<redis::RedisBatchClaimer::Batch> b = claimer_->TryClaim(claim);
    if (!b.ok() || b->empty()) {
      std::fprintf(stderr, "sluice bench-redis: claim stopped after %lld: %s\n",
                   static_cast<long long>(claimed),
                   b.ok() ? "queue empty" : b.status().message().c_str());
      return -1;
    }
    deepest_ = std::max(deepest_, b->depth + b->requests.size() + b->expired.size());
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
    in_flight_.WaitAtMost(s_.in_flight - 1);
    in_flight_.Add();
    claimer_->CompleteAsync(results, [this](Result<redis::RedisBatchClaimer::CompleteResult> r) {
      {
        std::lock_guard lock(mu_);
        if (r.ok()) answered_ += static_cast<int64_t>(r->answered);
      }
      in_flight_.Done();
    });
    return static_cast<int64_t>(results.size());
  }

  redis::RedisConnection& conn_;
  const Settings s_;
  const redis::KeySpace keys_;
  std::unique_ptr<redis::RedisQueueClient> client_;
  std::unique_ptr<redis::RedisBatchClaimer> claimer_;
  InFlight in_flight_;
  size_t deepest_ = 0;  // Run()'s thread only
  std::mutex mu_;
  int64_t refused_ = 0;        // GUARDED_BY(mu_): enqueue answers other than OK
  std::string first_refusal_;  // GUARDED_BY(mu_)
  int64_t answered_ = 0;       // GUARDED_BY(mu_)
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

  std::printf(
      "| enqueue batch | claim batch | deepest queue | requests | keys | Redis µs/req enqueue | "
      "Redis µs/req claim + complete | Redis µs/req total | req/s per Redis core |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int64_t batch : batches) {
    BatchSizeRun::Settings settings;
    settings.batch = batch;
    settings.claim_batch = claim_batch_;
    settings.requests = requests_;
    settings.keys = keys_;
    settings.in_flight = in_flight_;
    settings.payload_bytes = payload_bytes_;
    settings.queue_depth = queue_depth_;
    std::unique_ptr<BatchSizeRun> run = BatchSizeRun::Create(conn, settings);
    if (run == nullptr) return 1;
    BatchSizeRun::Cpu cpu;
    if (!run->Run(&cpu) || cpu.start < 0 || cpu.end < 0 ||
        (queue_depth_ == 0 && cpu.enqueued < 0)) {
      std::fprintf(stderr, "sluice bench-redis: run with enqueue batch %lld failed\n",
                   static_cast<long long>(batch));
      return 1;
    }
    const double n = static_cast<double>(requests_);
    const double total_us = (cpu.end - cpu.start) * 1e6 / n;
    // In steady state the phases interleave: only the total is measured.
    const bool phases = queue_depth_ == 0;
    const std::string enqueue_us =
        phases ? fmt::format("{:.2f}", (cpu.enqueued - cpu.start) * 1e6 / n) : "—";
    const std::string drain_us =
        phases ? fmt::format("{:.2f}", (cpu.end - cpu.enqueued) * 1e6 / n) : "—";
    std::printf("| %lld | %lld | %zu | %lld | %lld | %s | %s | %.2f | %.0f |\n",
                static_cast<long long>(batch), static_cast<long long>(claim_batch_), run->deepest(),
                static_cast<long long>(requests_), static_cast<long long>(keys_),
                enqueue_us.c_str(), drain_us.c_str(), total_us,
                total_us > 0 ? 1e6 / total_us : 0.0);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace sluice
