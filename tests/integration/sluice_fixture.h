// Shared pieces of the integration tests: a config builder, the demo
// credentials, request builders, and a fixture that starts the real `sluice`
// binary (SLUICE_BINARY) for each test.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/value.hpp>

#include "testing/http_client.h"
#include "testing/load_client.h"
#include "testing/sluice_process.h"

namespace sluice::testing {

// The bundled config's model and demo credentials (config/sluice.yaml).
inline constexpr std::string_view kModel = "sluice-sim-small";
inline constexpr std::string_view kModelVersion = "sluice-sim-small-2026-11";
inline constexpr std::string_view kFreeKey = "sk-free-demo-0001";
inline constexpr std::string_view kPaidKey = "sk-paid-demo-0001";
inline constexpr std::string_view kEnterpriseKey = "sk-enterprise-demo-0001";
inline constexpr std::string_view kServiceToken = "svc-demo-token";
inline constexpr int kDefaultMaxTokens = 16;

// The demo key of "enterprise", "paid" or "free" (any other name).
constexpr std::string_view DemoKey(std::string_view tier) {
  if (tier == "enterprise") return kEnterpriseKey;
  if (tier == "paid") return kPaidKey;
  return kFreeKey;
}

// One tier's settings in a TestConfig. The defaults leave the tier as the
// core tests expect it: the config-wide time limits, no rate limits, the
// seed's admission depth threshold.
struct TestTier {
  int64_t latency_budget_ms = -1;   // -1: TestConfig::latency_budget_ms
  int64_t requests_per_minute = 0;  // per key; 0 = unlimited
  int64_t tokens_per_minute = 0;    // per key; 0 = unlimited
  int64_t max_queue_depth = -1;     // admission threshold; 0 = none; -1 = seed default
};

// An API key beyond the demo ones, with optional per-key limit overrides.
struct TestKey {
  std::string id;
  std::string tier;                  // "free", "paid" or "enterprise"
  std::string secret;                // the bearer token; Yaml() stores its SHA-256
  int64_t requests_per_minute = -1;  // -1: the tier's limit
  int64_t tokens_per_minute = -1;    // -1: the tier's limit
};

// The knobs the tests turn; Yaml() renders a full config in the bundled
// file's format with the demo keys and service token. Unless a test sets a
// tier's latency_budget_ms, every tier gets the same time limits, so only the
// scenario decides which requests time out.
struct TestConfig {
  // server
  uint64_t body_limit_bytes = 1 << 20;
  uint32_t header_limit_bytes = 16 << 10;
  int64_t drain_timeout_ms = 10'000;
  int io_threads = 2;
  size_t recent_requests = 100'000;  // requests kept in memory for lookups
  size_t watch_client_min_queue_depth = 32;
  int max_connections_per_client = 0;  // 0: no cap
  uint64_t unauthenticated_memory_limit_bytes = 64ull << 20;
  // An `admin:` section (127.0.0.1, any free port): /internal/* and
  // /metrics move there (SluiceProcess::admin_port()).
  bool admin_listener = false;
  // A `tracing:` section exporting to this OTLP receiver (every 100 ms);
  // "" = tracing off.
  std::string tracing_endpoint;
  double tracing_sample_ratio = 1.0;
  // request_log section: "memory" (default here, so tests write no files),
  // or "sqlite" with sqlite_path.
  std::string request_log = "memory";
  std::string sqlite_path;
  std::string postgres_url;  // request_log "postgres": the database
  // the asynchronous API's tasks (`async:`)
  int64_t async_result_ttl_ms = 600'000;
  uint64_t async_max_bytes = 256ull << 20;
  int64_t async_max_wait_ms = 30'000;
  // capacity-aware admission (off unless a test is about it: the core tests
  // overload the sim on purpose)
  bool admission = false;
  double target_utilization = 0.75;
  // tiers
  int64_t latency_budget_ms = 8'000;
  int64_t max_queue_age_ms = 9'000;
  int64_t total_timeout_ms = 10'000;
  TestTier enterprise_tier;
  TestTier paid_tier;
  TestTier free_tier;
  // the one model, kModel
  int max_batch_size = 32;
  int64_t max_batch_delay_us = 20'000;
  int queue_capacity = 10'000;
  int64_t accelerator_timeout_ms = 3'000;
  int max_tokens_limit = 4096;
  // whether every answer may be shared (cache, collapse), not only those
  // at temperature 0
  bool deterministic = false;
  // its result cache (`cache:`), written only when enabled
  bool cache = false;
  bool collapse = false;  // identical requests waiting together share one batch item
  int64_t cache_ttl_ms = 300'000;
  uint64_t cache_max_bytes = 1 << 20;
  // its simulated accelerator
  int devices = 4;
  int64_t fixed_latency_us = 34'000;
  int64_t per_item_latency_us = 500;
  // keys besides the demo ones
  std::vector<TestKey> extra_keys;
  // When set, replaces the model's sim `backend:` block: YAML indented for
  // the model's mapping (4 spaces), e.g. an http backend plus `retry:` and
  // `circuit_breaker:` blocks.
  std::string backend_yaml;

  std::string Yaml() const;
};

// {"model": model, "input": input[, "parameters": {"max_tokens": N}]}
std::string InferenceBody(std::string_view model, std::string_view input,
                          std::optional<int> max_tokens = std::nullopt);

// A POST /v1/inference for the load client.
LoadRequest InferenceRequest(std::string_view key, std::string_view input,
                             std::optional<int> max_tokens = std::nullopt,
                             Headers extra_headers = {});

// v[key] when `v` is an object holding a string (number) there; else nullopt.
std::optional<std::string> StringField(const boost::json::value& v, std::string_view key);
std::optional<double> NumberField(const boost::json::value& v, std::string_view key);
// error.request_id of an error body, or "".
std::string ErrorRequestId(std::string_view body);

// The entry for kModel in a /internal/health body's "models" list, or a null
// value.
boost::json::value ModelHealth(const boost::json::value& health);

// The admin route that switches device `index` of `model` on or off.
std::string DevicePath(std::string_view model, int index);

// True when `id` looks like "req_" + 32 lowercase hex digits.
bool IsRequestId(std::string_view id);

// Checks the error contract: `status`, a JSON body
// {"error": {"code": code, "message": <non-empty>, "request_id": <id or null>}}.
::testing::AssertionResult IsError(int status, std::string_view body, int want_status,
                                   std::string_view want_code);
inline ::testing::AssertionResult IsError(const Response& r, int want_status,
                                          std::string_view want_code) {
  return IsError(r.status, r.body, want_status, want_code);
}

// The error message of an error body, or "" when there is none.
std::string ErrorMessage(std::string_view body);

// Checks a 200 inference body against the simulator's deterministic answer.
::testing::AssertionResult IsCompletion(int status, std::string_view body, std::string_view input,
                                        int max_tokens);

// Connects `socket` to 127.0.0.1:`port` and sends one inference request
// for `input` with the paid demo key (the caller reads or aborts).
void SendInference(boost::asio::ip::tcp::socket& socket, uint16_t port, const std::string& input);

// Calls `done` every `interval` until it returns true or `timeout` passes;
// returns whether it did. Bounded in time and in number of calls.
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(5));

// A plain TCP connection to 127.0.0.1:`port` (for bytes no HTTP client would
// send); the caller closes it. -1 when connect() failed.
int ConnectRaw(uint16_t port);

// Everything the peer sends on `fd` until it closes (bounded by `limit`);
// `*closed` says whether it closed.
std::string ReadUntilClose(int fd, std::chrono::milliseconds limit, bool* closed);

// Runs `command` through the shell (bound it with `timeout`); its exit
// status (as pclose() returns it) and its standard output.
std::pair<int, std::string> RunShell(const std::string& command);

// A fresh, empty directory under the temp dir, named after `name` and
// this process.
std::string FreshTempDir(const std::string& name);

// Headless Chromium (Debian's `chromium`) on `url` with its own profile
// directory, given `seconds` of the page's virtual time (its timers and
// fetches), then `action` ("--dump-dom" or "--screenshot=PATH"); at most
// 120 s. Its exit status and standard output.
std::pair<int, std::string> HeadlessChromium(const std::string& url, const std::string& action,
                                             const std::string& profile, int seconds);

// The number in `attribute` of the element with `id` in `dom`, or -1.
double DomAttribute(const std::string& dom, const std::string& id, const std::string& attribute);

// Base fixture: one sluice process per test.
class SluiceTest : public ::testing::Test {
 protected:
  // Starts sluice with `config`; a fatal failure when it does not become
  // ready. Use as ASSERT_NO_FATAL_FAILURE(StartSluice(config)).
  // `options` (stderr_path, open-file limits) without the binary and config,
  // which these fill in.
  void StartSluice(const TestConfig& config, SluiceProcessOptions options = {}) {
    StartSluiceWithYaml(config.Yaml(), std::move(options));
  }
  void StartSluiceWithYaml(std::string yaml, SluiceProcessOptions options = {});

  uint16_t port() const { return process_->port(); }
  SluiceProcess& process() { return *process_; }
  // A fresh synchronous client to the server.
  std::unique_ptr<HttpClient> NewClient(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) const {
    return std::make_unique<HttpClient>(port(), timeout);
  }

  // A plain TCP connection to the server (ConnectRaw).
  int Connect() const { return ConnectRaw(port()); }

  // A fresh client's inference request is answered 200 (fatal failure if not).
  void ExpectStillServing();

  // GET /internal/health with the service token; its queue_depth, or -1.
  int64_t QueueDepth(HttpClient& client);

  // GET /internal/health with the service token, parsed; a null value when
  // it did not answer 200 with JSON.
  boost::json::value Health(HttpClient& client);
  // GET /metrics with the service token; nullopt when it did not answer 200.
  std::optional<std::string> Metrics(HttpClient& client);
  // The sum of metric `name`'s samples whose labels include `match`, from a
  // fresh client's GET /metrics; 0 when there are none (a failed scrape is
  // a test failure).
  double ScrapeSum(std::string_view name, const std::map<std::string, std::string>& match = {});

  // Polls GET /internal/requests/{id} (bounded by `timeout`) until the record
  // says "completed" or "failed"; returns the last body seen (parsed), or a
  // null value when none came back.
  boost::json::value WaitForFinalRecord(
      HttpClient& client, std::string_view id,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(2'000));

  std::unique_ptr<SluiceProcess> process_;
};

}  // namespace sluice::testing
