// AppConfig: everything `sluice serve` is told by its YAML file and flags.
//
// Only this folder reads files, the environment and flags. LoadConfigFile()
// parses and validates; every error names the offending field by its YAML
// path (e.g. "models[0].max_batch_size: must be between 1 and 4096").
// Defaults are inline here and documented in the README's configuration
// reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/chat_template.h"
#include "core/circuit_breaker.h"
#include "core/dispatch_group.h"
#include "core/request_queue.h"
#include "core/retry_policy.h"
#include "core/tier.h"

namespace sluice {

struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;                    // 0 = any free port (printed at start)
  int io_threads = 2;                      // front-door event-loop threads, >= 1
  int max_connections = 10'000;            // open client connections, beyond: refused
  uint64_t body_limit_bytes = 1 << 20;     // larger bodies: 413
  uint32_t header_limit_bytes = 16 << 10;  // larger header blocks: 431 / 400
  int64_t read_timeout_ms = 10'000;        // to receive a whole request once started
  int64_t idle_timeout_ms = 60'000;        // keep-alive connection with no request
  int64_t drain_timeout_ms = 10'000;       // graceful shutdown budget
  std::string service_token_sha256;        // hex SHA-256 of the internal-endpoint token
  size_t recent_requests = 100'000;        // entries kept for /internal/requests/{id}
  size_t dead_letter_capacity = 1'000;     // entries kept for /internal/dead-letters
  // Watch for clients hanging up while queued (their request is then
  // dropped) when at least this many requests are queued ahead; 0 = always.
  size_t watch_client_min_queue_depth = 32;
  // Hostile clients (see README "Limits"): fields per request (header +
  // trailers), bytes of extensions per chunk, open connections per client
  // address (0 = no cap), client errors (4xx but 429) before a connection
  // is closed, and bytes held by connections that have not authenticated
  // yet (past it new connections get 503).
  uint32_t max_header_fields = 100;
  uint32_t chunk_extension_limit_bytes = 256;
  int max_connections_per_client = 0;
  int max_bad_requests_per_connection = 10;
  uint64_t unauthenticated_memory_limit_bytes = 64ull << 20;
};

// Optional second listener for /internal/* and /metrics: with it, the
// public listener answers only the public API (/v1/*; 404 for the rest).
struct AdminConfig {
  bool enabled = false;  // true when the config has an `admin:` section
  std::string listen_address = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port (printed at start)
};

struct SimBackendConfig {
  int devices = 1;                    // accelerator slots (simulated GPUs), >= 1
  int64_t fixed_latency_us = 34'000;  // per batch
  int64_t per_item_latency_us = 500;  // per request in the batch (32 items: ~50 ms)
  double jitter = 0.0;                // +/- fraction of the latency, 0..1
  uint64_t seed = 1;                  // jitter RNG seed

  bool operator==(const SimBackendConfig&) const = default;
};

// Kinds `http` (generic batch protocol), `openai` and `kserve`: a fixed
// inference API reached over HTTP(S). Each endpoint gets
// `connections_per_endpoint` dispatcher slots, each with its own keep-alive
// connection (one batch in flight per connection).
struct HttpBackendConfig {
  std::vector<std::string> endpoints;  // base URLs, http:// or https://; at least one
  int connections_per_endpoint = 1;    // keep-alive connections = batch slots per endpoint
  int64_t connect_timeout_ms = 1'000;  // resolve + TCP connect + TLS handshake
  int64_t request_timeout_ms = 3'000;  // write the batch + read the whole reply
  std::string remote_model;            // model name sent to the server; empty = models[].name
  // openai only: "completions", "embeddings" (batched arrays) or "chat"
  // (one streamed conversation per call; max_batch_size 1).
  std::string openai_api = "completions";
  std::string tls_ca_file;    // https: PEM CA bundle to verify the server; empty = system CAs
  std::string tls_cert_file;  // https: PEM client certificate (mTLS); needs tls_key_file
  std::string tls_key_file;   // https: PEM private key of tls_cert_file

  bool operator==(const HttpBackendConfig&) const = default;
};

struct BackendConfig {
  std::string kind = "sim";  // "sim", "http", "openai" or "kserve"
  SimBackendConfig sim;      // kind sim
  HttpBackendConfig http;    // kinds http, openai, kserve
};

// `cache:` of a model — its result cache (core/result_cache.h): answers to
// requests whose output is deterministic (ModelConfig::deterministic), kept
// for repeats.
struct ModelCacheConfig {
  bool enabled = false;
  int64_t ttl_ms = 300'000;          // an answer's life after it is stored; 1..30 days
  uint64_t max_bytes = 64ull << 20;  // memory for this model's answers; >= 1
};

// What a model answers: text for a prompt, or a vector for a text.
enum class ModelTask { kCompletions, kEmbeddings };

struct ModelConfig {
  std::string name;                     // as clients send it in "model"
  std::string version;                  // reported as metadata.model_version
  size_t max_batch_size = 32;           // 1..4096
  int64_t max_batch_delay_us = 10'000;  // longest wait for a fuller batch
  // While synchronous requests flow, the largest batch that asynchronous
  // work fills (DispatchGroup::Options::async_fill_max_batch_size);
  // 0..max_batch_size, 0 = three quarters of max_batch_size (rounded up).
  size_t async_fill_max_batch_size = 0;
  // `batching`: adaptive (wait only when the load needs fuller batches) or
  // static (wait for a full batch or max_batch_delay_us).
  BatchingMode batching = BatchingMode::kAdaptive;
  size_t queue_capacity = 10'000;          // queued synchronous requests; beyond: 503
  int64_t accelerator_timeout_ms = 3'000;  // per batch (seed: 3 s)
  int max_tokens_limit = 4096;             // largest parameters.max_tokens accepted
  int default_max_tokens = 16;             // when parameters.max_tokens is absent
  BackendConfig backend;
  // `retry`: max_retries, initial_backoff_ms, max_backoff_ms, jitter.
  RetryPolicy retry;
  // `circuit_breaker` (per endpoint): consecutive_failures, failure_ratio,
  // window, min_batches, cooldown_ms, max_cooldown_ms.
  CircuitBreaker::Options circuit_breaker;
  // Every request's answer depends on its input and parameters only, so it
  // may be shared (cache, collapse); false: only those at temperature 0.
  bool deterministic = false;
  ModelCacheConfig cache;  // `cache`: enabled, ttl_ms, max_bytes
  // Identical requests waiting at the same time share one batch item
  // (core/request_collapser.h); only those whose answer may be shared.
  bool collapse = false;
  // `task`: "completions" (POST /v1/inference, /v1/completions and
  // /v1/chat/completions) or "embeddings" (/v1/inference and
  // /v1/embeddings; each output is a JSON array of numbers). Default:
  // embeddings for an openai backend with openai_api embeddings, else
  // completions.
  ModelTask task = ModelTask::kCompletions;
  // Embeddings: the length of the model's vectors, 1..65536; the sim makes
  // vectors this long (required there). 0: whatever the backend returns.
  int embedding_dimensions = 0;
  // Embeddings: a request's `dimensions` shortens the vector (the gateway
  // keeps its first N numbers and rescales them to unit length, as models
  // trained for it allow). Needs embedding_dimensions.
  bool accepts_dimensions = false;
  // `chat_template` (system, user, assistant, generation_prompt): how
  // /v1/chat/completions turns messages into this model's prompt.
  ChatTemplate chat_template;
};

struct ApiKeyConfig {
  std::string id;                    // non-secret key id, shown in logs and metrics
  std::string tier;                  // a tier name from `tiers`
  std::string sha256;                // hex SHA-256 of the secret key
  int64_t requests_per_minute = -1;  // override of the tier's limit; -1 = the tier's
  int64_t tokens_per_minute = -1;    // override of the tier's limit; -1 = the tier's
};

struct AdmissionConfig {
  bool enabled = true;  // deadline-aware admission (503 before queueing)
  // Planning and scaling target (recommended devices), never an admission cap.
  double target_utilization = 0.75;
};

// `redis:` — the shared state of `sluice gateway` and `sluice worker`:
// queues, results, rate limits and the worker registry (key layout in
// redis/keys.h). Required by those two commands; `sluice serve` ignores it.
struct RedisConfig {
  bool configured = false;            // the file has a `redis:` section
  std::string host = "127.0.0.1";     // IP address or host name
  uint16_t port = 6379;               // 1..65535
  std::string key_prefix = "sluice";  // first part of every key and channel
  // Redis Cluster: "host:port" of nodes to read the slot map from (any
  // node; list several in case one is down). Non-empty = cluster mode, and
  // host/port are not used.
  std::vector<std::string> cluster_nodes;
  // Shards of each model's queue (redis/keys.h): on a cluster, one model's
  // queue spread over this many slots (and masters). EDF order holds within
  // a shard; run at least this many workers per model. 1..64.
  int64_t queue_shards = 1;
  // AUTH for every connection: `password` (or the environment variable
  // named by `password_env`, read at load) alone for requirepass, with
  // `username` for an ACL user. Empty = no AUTH.
  std::string username;
  std::string password;
  std::string password_env;
  int64_t connect_timeout_ms = 1'000;  // TCP connect; > 0
  int64_t command_timeout_ms = 1'000;  // longest wait for a reply; > 0
  // How long a claimed batch stays leased to its worker without a renewal;
  // the worker renews what it holds every lease_ms / 4, so a lease runs out
  // only when its worker died (or lost Redis): the reaper (every lease_ms / 4)
  // then re-queues its unanswered requests. A dead worker's batch runs again elsewhere
  // within about 1.25 × lease_ms. >= 200.
  int64_t lease_ms = 2'000;
  // A worker counts as alive until this long after its last heartbeat
  // (workers beat every third of it); >= 300.
  int64_t heartbeat_ttl_ms = 3'000;
  // This gateway's id (its result channel); empty = random per process.
  std::string gateway_id;
  // A gateway sends each model's requests to Redis in batches: those that
  // arrive within enqueue_max_delay_us of the batch's first (0 = within
  // one event-loop turn), or while the previous batch is in flight, at
  // most enqueue_max_batch per script call. 0..100000 and 1..1000.
  int64_t enqueue_max_delay_us = 0;
  int64_t enqueue_max_batch = 256;
};

// `worker:` — options of `sluice worker` beyond its model and endpoint.
struct WorkerConfig {
  // Worker id in the registry; empty = "<host>-<pid>-<model>-<endpoint>".
  std::string id;
  int64_t max_block_ms = 500;    // longest blocking wait (BLPOP) per claim; 1..10000
  int64_t reap_interval_ms = 0;  // reaper period; 0 = redis.lease_ms / 4
};

// Where request and batch records go (see core/request_log.h, src/store/).
struct RequestLogConfig {
  std::string backend = "sqlite";           // "sqlite" (default), "postgres" or "memory"
  std::string path = "sluice-requests.db";  // sqlite: the database file (its directory must exist)
  std::string url;                          // postgres: libpq URI; required for postgres
  size_t buffer_capacity = 100'000;         // records waiting for the database; then oldest dropped
  size_t flush_batch = 1'000;               // records per write, 1..buffer_capacity
  int64_t flush_interval_ms = 200;          // longest wait before a smaller write
  int64_t close_timeout_ms = 5'000;         // shutdown: time to write what is buffered
  int64_t retention_hours = 0;              // delete older rows, every minute; 0 = keep forever
};

// `async:` — the asynchronous API's tasks and Idempotency-Key answers
// (core/task_store.h): in memory for `serve`, in Redis for a gateway (with
// a time to live, and no byte budget of its own: Redis's maxmemory).
struct AsyncConfig {
  int64_t result_ttl_ms = 600'000;    // a completed task's life; 1 ms..30 days
  uint64_t max_bytes = 256ull << 20;  // completed tasks' memory (in memory), oldest out first; >= 1
  // Tasks waiting for their answer at once (a gateway: its own), and a
  // gateway's async requests held per model before its queue; >= 1.
  uint64_t max_pending = 100'000;
  int64_t max_wait_ms = 30'000;  // the longest GET /v1/result ?wait_ms; 0..600000
};

// Distributed tracing (W3C Trace Context, OpenTelemetry): spans exported as
// OTLP/HTTP JSON. Off unless otlp_endpoint is set (then a client's
// traceparent is not read, and backends receive none).
struct TracingConfig {
  // The receiver's URL, http://HOST:PORT[/PATH] (Jaeger and the
  // OpenTelemetry Collector: port 4318, /v1/traces, added when no path is
  // given); "" = tracing off.
  std::string otlp_endpoint;
  double sample_ratio = 1.0;  // new traces sampled, 0..1; a client's traceparent decides its own
  std::string service_name = "sluice";  // the resource's service.name
  uint64_t max_queue_spans = 8'192;     // spans waiting for export; beyond: dropped, counted
  uint64_t export_batch_spans = 512;    // spans per POST, 1..max_queue_spans
  int64_t export_interval_ms = 1'000;   // a partial batch waits at most this long
  int64_t export_timeout_ms = 5'000;    // per POST; a batch that fails is dropped
};

struct AppConfig {
  ServerConfig server;
  AdminConfig admin;
  QueueOrdering ordering = QueueOrdering::kEarliestDeadlineFirst;
  std::vector<TierPolicy> tiers;    // non-empty, unique names
  std::vector<ModelConfig> models;  // non-empty, unique names
  std::vector<ApiKeyConfig> keys;
  AdmissionConfig admission;
  RequestLogConfig request_log;
  RedisConfig redis;
  WorkerConfig worker;
  AsyncConfig async;
  TracingConfig tracing;
  // The file it was read from and its text as read (LoadConfigFile; ""
  // when parsed from text): what a reload re-reads, and compares with.
  std::string source_path;
  std::string source_text;
};

// Parses YAML text (`source` names it in messages) and validates it.
Result<AppConfig> ParseConfig(const std::string& yaml_text, const std::string& source);
// Reads and parses a file.
Result<AppConfig> LoadConfigFile(const std::string& path);
// Checks cross-field rules; ParseConfig() calls it. Exposed for tests.
Status ValidateConfig(const AppConfig& config);

}  // namespace sluice
