// ValidateConfig(): the value rules of AppConfig. Every message starts with
// the field's YAML path, and durations are shown in the unit the YAML uses.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto.h"
#include "common/http_fetch.h"
#include "config/config.h"
#include "core/memory_result_cache.h"

namespace sluice {
namespace {

// Limits that are not struct defaults; the README's configuration reference
// quotes them.
constexpr int kMaxIoThreads = 64;
constexpr uint32_t kMinHeaderLimitBytes = 1024;
constexpr size_t kMaxBatchSize = 4096;
constexpr int kMaxDevices = 1024;
constexpr int kMaxEmbeddingDimensions = 65536;
// Requests carry their tier as a TierIndex (uint8_t).
constexpr size_t kMaxTiers = 256;

Status Fail(const std::string& path, const std::string& message) {
  return InvalidArgument(path + ": " + message);
}

std::string Got(int64_t value) { return ", got " + std::to_string(value); }

std::string Element(const char* list, size_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

bool IsSha256Hex(const std::string& hex) {
  Sha256Digest unused;
  return ParseSha256Hex(hex, &unused);
}

Status ValidateServer(const ServerConfig& s) {
  // port: a uint16_t cannot leave 0..65535; the parser rejects larger values.
  if (s.listen_address.empty()) return Fail("server.listen_address", "must not be empty");
  if (s.io_threads < 1 || s.io_threads > kMaxIoThreads) {
    return Fail("server.io_threads",
                "must be between 1 and " + std::to_string(kMaxIoThreads) + Got(s.io_threads));
  }
  if (s.max_connections < 1) {
    return Fail("server.max_connections", "must be at least 1" + Got(s.max_connections));
  }
  if (s.body_limit_bytes < 1) return Fail("server.body_limit_bytes", "must be at least 1, got 0");
  if (s.header_limit_bytes < kMinHeaderLimitBytes) {
    return Fail(
        "server.header_limit_bytes",
        "must be at least " + std::to_string(kMinHeaderLimitBytes) + Got(s.header_limit_bytes));
  }
  const std::pair<const char*, int64_t> timeouts[] = {
      {"server.read_timeout_ms", s.read_timeout_ms},
      {"server.idle_timeout_ms", s.idle_timeout_ms},
      {"server.drain_timeout_ms", s.drain_timeout_ms}};
  for (const auto& [path, value] : timeouts) {
    if (value <= 0) return Fail(path, "must be greater than 0" + Got(value));
  }
  if (!s.service_token_sha256.empty() && !IsSha256Hex(s.service_token_sha256)) {
    return Fail("server.service_token_sha256",
                "must be empty or 64 hex digits (a SHA-256; `sluice hash-key TOKEN` prints one)");
  }
  if (s.recent_requests < 1) return Fail("server.recent_requests", "must be at least 1, got 0");
  if (s.dead_letter_capacity < 1) {
    return Fail("server.dead_letter_capacity", "must be at least 1, got 0");
  }
  if (s.max_header_fields < 1) return Fail("server.max_header_fields", "must be at least 1, got 0");
  if (s.max_connections_per_client < 0) {
    return Fail("server.max_connections_per_client",
                "must be 0 (no cap) or more" + Got(s.max_connections_per_client));
  }
  if (s.max_bad_requests_per_connection < 1) {
    return Fail("server.max_bad_requests_per_connection",
                "must be at least 1" + Got(s.max_bad_requests_per_connection));
  }
  if (s.unauthenticated_memory_limit_bytes < (1u << 20)) {
    return Fail("server.unauthenticated_memory_limit_bytes",
                "must be at least 1048576" +
                    Got(static_cast<int64_t>(s.unauthenticated_memory_limit_bytes)));
  }
  return Status::Ok();
}

Status ValidateTiers(const std::vector<TierPolicy>& tiers) {
  if (tiers.empty()) return Fail("tiers", "at least one tier is required");
  if (tiers.size() > kMaxTiers) {
    return Fail("tiers", "at most " + std::to_string(kMaxTiers) + " tiers are supported");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < tiers.size(); ++i) {
    const TierPolicy& t = tiers[i];
    const std::string path = Element("tiers", i);
    if (t.name.empty()) return Fail(path + ".name", "must not be empty");
    if (!names.insert(t.name).second) {
      return Fail(path + ".name", "duplicate tier name \"" + t.name + "\"");
    }
    const std::pair<const char*, int64_t> durations_us[] = {
        {".latency_budget_ms", t.latency_budget_us},
        {".max_queue_age_ms", t.max_queue_age_us},
        {".total_timeout_ms", t.total_timeout_us},
        {".async_budget_ms", t.async_budget_us}};
    // At most a week: deadlines are carried as wall-clock microseconds
    // (scale-out's queue entries, bounded to before the year 2096 by their
    // decoder) and as steady-clock time points, and neither may overflow.
    constexpr int64_t kMaxDurationUs = int64_t{7} * 24 * 3600 * 1'000'000;
    for (const auto& [field, us] : durations_us) {
      if (us <= 0) return Fail(path + field, "must be greater than 0" + Got(us / 1000));
      if (us > kMaxDurationUs) {
        return Fail(path + field, "must be at most " + std::to_string(kMaxDurationUs / 1000) +
                                      " (7 days)" + Got(us / 1000));
      }
    }
    if (t.requests_per_minute < 0) {
      return Fail(path + ".requests_per_minute",
                  "must be >= 0 (0 = unlimited)" + Got(t.requests_per_minute));
    }
    if (t.tokens_per_minute < 0) {
      return Fail(path + ".tokens_per_minute",
                  "must be >= 0 (0 = unlimited)" + Got(t.tokens_per_minute));
    }
    if (t.max_queue_depth_per_device < 0) {
      return Fail(path + ".max_queue_depth_per_device",
                  "must be >= 0 (0 = none)" + Got(t.max_queue_depth_per_device));
    }
    if (t.max_queue_depth < -1) {
      return Fail(
          path + ".max_queue_depth",
          "must be >= 0 (0 = unlimited), or -1 for the seed default" + Got(t.max_queue_depth));
    }
    if (t.latency_budget_us > t.total_timeout_us) {
      return Fail(path + ".latency_budget_ms", "must not exceed total_timeout_ms (" +
                                                   std::to_string(t.total_timeout_us / 1000) + ")" +
                                                   Got(t.latency_budget_us / 1000));
    }
  }
  return Status::Ok();
}

bool IsHttpKind(const std::string& kind) {
  return kind == "http" || kind == "openai" || kind == "kserve";
}

// "http://host[:port][/path]" or https; the host must be non-empty.
bool IsHttpUrl(const std::string& url) {
  size_t start = 0;
  if (url.rfind("http://", 0) == 0) {
    start = 7;
  } else if (url.rfind("https://", 0) == 0) {
    start = 8;
  } else {
    return false;
  }
  const size_t end = url.find_first_of("/?#", start);
  const std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  return !authority.empty() && authority[0] != ':' && authority.find('@') == std::string::npos &&
         url.find_first_of(" \t\r\n") == std::string::npos;
}

Status ValidateHttpBackend(const BackendConfig& b, const std::string& path) {
  const HttpBackendConfig& h = b.http;
  if (h.endpoints.empty())
    return Fail(path + ".endpoints", "at least one endpoint URL is required");
  for (size_t i = 0; i < h.endpoints.size(); ++i) {
    if (!IsHttpUrl(h.endpoints[i])) {
      return Fail(
          path + "." + Element("endpoints", i),
          "expected an http:// or https:// URL with a host, got \"" + h.endpoints[i] + "\"");
    }
  }
  if (h.connections_per_endpoint < 1 || h.connections_per_endpoint > kMaxDevices) {
    return Fail(
        path + ".connections_per_endpoint",
        "must be between 1 and " + std::to_string(kMaxDevices) + Got(h.connections_per_endpoint));
  }
  if (h.endpoints.size() * static_cast<size_t>(h.connections_per_endpoint) >
      static_cast<size_t>(kMaxDevices)) {
    return Fail(
        path + ".connections_per_endpoint",
        "endpoints x connections_per_endpoint must not exceed " + std::to_string(kMaxDevices));
  }
  if (h.connect_timeout_ms <= 0) {
    return Fail(path + ".connect_timeout_ms", "must be greater than 0" + Got(h.connect_timeout_ms));
  }
  if (h.request_timeout_ms <= 0) {
    return Fail(path + ".request_timeout_ms", "must be greater than 0" + Got(h.request_timeout_ms));
  }
  if (b.kind == "openai" && h.openai_api != "completions" && h.openai_api != "embeddings" &&
      h.openai_api != "chat") {
    return Fail(path + ".openai_api",
                "unknown API \"" + h.openai_api + "\" (supported: completions, embeddings, chat)");
  }
  if (h.tls_cert_file.empty() != h.tls_key_file.empty()) {
    return Fail(path + (h.tls_cert_file.empty() ? ".tls_cert_file" : ".tls_key_file"),
                "tls_cert_file and tls_key_file must be given together (mTLS)");
  }
  return Status::Ok();
}

Status ValidateBackend(const BackendConfig& b, const std::string& path) {
  if (IsHttpKind(b.kind)) return ValidateHttpBackend(b, path);
  if (b.kind != "sim") {
    return Fail(path + ".kind",
                "unknown backend \"" + b.kind + "\" (supported: sim, http, openai, kserve)");
  }
  const SimBackendConfig& sim = b.sim;
  if (sim.devices < 1 || sim.devices > kMaxDevices) {
    return Fail(path + ".devices",
                "must be between 1 and " + std::to_string(kMaxDevices) + Got(sim.devices));
  }
  if (sim.fixed_latency_us < 0) {
    return Fail(path + ".fixed_latency_us", "must be at least 0" + Got(sim.fixed_latency_us));
  }
  if (sim.per_item_latency_us < 0) {
    return Fail(path + ".per_item_latency_us", "must be at least 0" + Got(sim.per_item_latency_us));
  }
  if (!(sim.jitter >= 0.0 && sim.jitter <= 1.0)) {  // also rejects NaN
    return Fail(path + ".jitter", "must be between 0 and 1, got " + std::to_string(sim.jitter));
  }
  return Status::Ok();
}

// task, embedding_dimensions, accepts_dimensions and chat_template.
Status ValidateTask(const ModelConfig& m, const std::string& path) {
  const bool embeddings = m.task == ModelTask::kEmbeddings;
  if (m.backend.kind == "openai" && (m.backend.http.openai_api == "embeddings") != embeddings) {
    return Fail(path + ".task",
                std::string("must be ") + (embeddings ? "completions" : "embeddings") +
                    " for an openai backend with openai_api " + m.backend.http.openai_api);
  }
  if (m.backend.kind == "openai" && m.backend.http.openai_api == "chat" && m.max_batch_size != 1) {
    return Fail(path + ".max_batch_size",
                "must be 1 for an openai backend with openai_api chat (one conversation per call)" +
                    Got(static_cast<int64_t>(m.max_batch_size)));
  }
  if (m.embedding_dimensions < 0 || m.embedding_dimensions > kMaxEmbeddingDimensions) {
    return Fail(path + ".embedding_dimensions", "must be between 0 and " +
                                                    std::to_string(kMaxEmbeddingDimensions) +
                                                    Got(m.embedding_dimensions));
  }
  if (embeddings && m.backend.kind == "sim" && m.embedding_dimensions == 0) {
    return Fail(path + ".embedding_dimensions",
                "is required for an embeddings model on the sim backend");
  }
  if (!embeddings && (m.embedding_dimensions != 0 || m.accepts_dimensions)) {
    return Fail(path + (m.accepts_dimensions ? ".accepts_dimensions" : ".embedding_dimensions"),
                "applies to task embeddings only");
  }
  if (m.accepts_dimensions && m.embedding_dimensions == 0) {
    return Fail(path + ".accepts_dimensions", "needs embedding_dimensions");
  }
  // Its message starts with the field ("user: ...").
  if (Status s = m.chat_template.Validate(); !s.ok()) {
    return InvalidArgument(path + ".chat_template." + s.message());
  }
  return Status::Ok();
}

Status ValidateModels(const std::vector<ModelConfig>& models) {
  if (models.empty()) return Fail("models", "at least one model is required");
  std::set<std::string> names;
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelConfig& m = models[i];
    const std::string path = Element("models", i);
    if (m.name.empty()) return Fail(path + ".name", "must not be empty");
    if (!names.insert(m.name).second) {
      return Fail(path + ".name", "duplicate model name \"" + m.name + "\"");
    }
    if (m.max_batch_size < 1 || m.max_batch_size > kMaxBatchSize) {
      return Fail(path + ".max_batch_size", "must be between 1 and " +
                                                std::to_string(kMaxBatchSize) +
                                                Got(static_cast<int64_t>(m.max_batch_size)));
    }
    if (m.max_batch_delay_us < 0) {
      return Fail(path + ".max_batch_delay_us", "must be at least 0" + Got(m.max_batch_delay_us));
    }
    if (m.async_fill_max_batch_size > m.max_batch_size) {
      return Fail(path + ".async_fill_max_batch_size",
                  "must be at most max_batch_size (" + std::to_string(m.max_batch_size) + ")" +
                      Got(static_cast<int64_t>(m.async_fill_max_batch_size)));
    }
    if (m.queue_capacity < 1) return Fail(path + ".queue_capacity", "must be at least 1, got 0");
    if (m.accelerator_timeout_ms <= 0) {
      return Fail(path + ".accelerator_timeout_ms",
                  "must be greater than 0" + Got(m.accelerator_timeout_ms));
    }
    if (m.max_tokens_limit < 1) {
      return Fail(path + ".max_tokens_limit", "must be at least 1" + Got(m.max_tokens_limit));
    }
    if (m.default_max_tokens < 1 || m.default_max_tokens > m.max_tokens_limit) {
      return Fail(path + ".default_max_tokens", "must be between 1 and max_tokens_limit (" +
                                                    std::to_string(m.max_tokens_limit) + ")" +
                                                    Got(m.default_max_tokens));
    }
    if (Status s = ValidateBackend(m.backend, path + ".backend"); !s.ok()) return s;
    if (Status s = ValidateTask(m, path); !s.ok()) return s;
    if (Status s = m.retry.Validate(); !s.ok()) return Fail(path + ".retry", s.message());
    if (Status s = CircuitBreaker::Validate(m.circuit_breaker); !s.ok()) {
      return Fail(path + ".circuit_breaker", s.message());
    }
    if (m.cache.ttl_ms < 1 || m.cache.ttl_ms > MemoryResultCache::kMaxTtlMs) {
      return Fail(path + ".cache.ttl_ms", "must be between 1 and " +
                                              std::to_string(MemoryResultCache::kMaxTtlMs) +
                                              " (30 days)" + Got(m.cache.ttl_ms));
    }
    if (m.cache.max_bytes < 1) {
      return Fail(path + ".cache.max_bytes", "must be at least 1" + Got(m.cache.max_bytes));
    }
  }
  return Status::Ok();
}

Status ValidateKeys(const std::vector<ApiKeyConfig>& keys, const std::vector<TierPolicy>& tiers) {
  std::set<std::string> tier_names;
  std::string tier_list;
  for (const TierPolicy& t : tiers) {
    tier_names.insert(t.name);
    tier_list += (tier_list.empty() ? "" : ", ") + t.name;
  }
  std::set<std::string> ids;
  std::map<Sha256Digest, size_t> digests;  // -> index of the first key with it
  for (size_t i = 0; i < keys.size(); ++i) {
    const ApiKeyConfig& k = keys[i];
    const std::string path = Element("keys", i);
    if (k.id.empty()) return Fail(path + ".id", "must not be empty");
    if (!ids.insert(k.id).second) return Fail(path + ".id", "duplicate key id \"" + k.id + "\"");
    if (tier_names.count(k.tier) == 0) {
      return Fail(path + ".tier",
                  "unknown tier \"" + k.tier + "\" (configured tiers: " + tier_list + ")");
    }
    if (k.requests_per_minute < -1) {
      return Fail(path + ".requests_per_minute",
                  "must be >= 0, or -1 for the tier's limit" + Got(k.requests_per_minute));
    }
    if (k.tokens_per_minute < -1) {
      return Fail(path + ".tokens_per_minute",
                  "must be >= 0, or -1 for the tier's limit" + Got(k.tokens_per_minute));
    }
    Sha256Digest digest;
    if (!ParseSha256Hex(k.sha256, &digest)) {
      return Fail(path + ".sha256",
                  "must be 64 hex digits (a SHA-256; `sluice hash-key SECRET` prints one)");
    }
    // Case-insensitive: both spellings of one hash are one key.
    auto [it, inserted] = digests.emplace(digest, i);
    if (!inserted) {
      return Fail(path + ".sha256", "same key hash as " + Element("keys", it->second) + " (\"" +
                                        keys[it->second].id + "\")");
    }
  }
  return Status::Ok();
}

// A part of a Redis key or channel name (redis/keys.h's rule, restated here:
// config does not depend on the Redis adapter): non-empty, <= 200 bytes, no
// '{', '}', '|' or control characters.
Status CheckKeyPart(const std::string& path, const std::string& value) {
  if (value.empty()) return Fail(path, "must not be empty");
  if (value.size() > 200) return Fail(path, "must be at most 200 bytes");
  for (char c : value) {
    if (c == '{' || c == '}' || c == '|' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Fail(path,
                  "must not contain '{', '}', '|' or control characters, got \"" + value + "\"");
    }
  }
  return Status::Ok();
}

Status ValidateRedis(const AppConfig& config) {
  const RedisConfig& r = config.redis;
  if (r.host.empty()) return Fail("redis.host", "must not be empty");
  if (r.port == 0) return Fail("redis.port", "must be between 1 and 65535, got 0");
  if (Status s = CheckKeyPart("redis.key_prefix", r.key_prefix); !s.ok()) return s;
  if (r.queue_shards < 1 || r.queue_shards > 64) {
    return Fail("redis.queue_shards", "must be between 1 and 64" + Got(r.queue_shards));
  }
  for (size_t i = 0; i < r.cluster_nodes.size(); ++i) {
    const std::string& n = r.cluster_nodes[i];
    const size_t colon = n.rfind(':');
    const std::string port = colon == std::string::npos ? "" : n.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (colon == 0 || !digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return Fail(Element("redis.cluster_nodes", i),
                  "expected \"host:port\" with a port in 1..65535, got \"" + n + "\"");
    }
  }
  const std::pair<const char*, int64_t> timeouts[] = {
      {"redis.connect_timeout_ms", r.connect_timeout_ms},
      {"redis.command_timeout_ms", r.command_timeout_ms}};
  for (const auto& [path, value] : timeouts) {
    if (value <= 0) return Fail(path, "must be greater than 0" + Got(value));
  }
  // Renewed every lease / 4 by a thread that also makes round trips to Redis.
  if (r.lease_ms < 200) return Fail("redis.lease_ms", "must be at least 200" + Got(r.lease_ms));
  for (size_t i = 0; i < config.models.size(); ++i) {
    const ModelConfig& m = config.models[i];
    if (Status s = CheckKeyPart(Element("models", i) + ".name", m.name); !s.ok()) {
      return s;
    }
  }
  if (r.enqueue_max_delay_us < 0 || r.enqueue_max_delay_us > 100'000) {
    return Fail("redis.enqueue_max_delay_us",
                "must be between 0 and 100000" + Got(r.enqueue_max_delay_us));
  }
  if (r.enqueue_max_batch < 1 || r.enqueue_max_batch > 1'000) {
    return Fail("redis.enqueue_max_batch", "must be between 1 and 1000" + Got(r.enqueue_max_batch));
  }
  if (r.heartbeat_ttl_ms < 300) {
    return Fail("redis.heartbeat_ttl_ms", "must be at least 300" + Got(r.heartbeat_ttl_ms));
  }
  if (!r.gateway_id.empty()) {
    if (Status s = CheckKeyPart("redis.gateway_id", r.gateway_id); !s.ok()) return s;
  }
  if (!r.username.empty() && r.password.empty()) {
    return Fail("redis.username", "needs a password (redis.password or redis.password_env)");
  }
  const WorkerConfig& w = config.worker;
  if (!w.id.empty()) {
    if (Status s = CheckKeyPart("worker.id", w.id); !s.ok()) return s;
  }
  if (w.max_block_ms < 1 || w.max_block_ms > 10'000) {
    return Fail("worker.max_block_ms", "must be between 1 and 10000" + Got(w.max_block_ms));
  }
  if (w.reap_interval_ms < 0) {
    return Fail("worker.reap_interval_ms",
                "must be >= 0 (0 = lease_ms / 4)" + Got(w.reap_interval_ms));
  }
  return Status::Ok();
}

Status ValidateAsync(const AsyncConfig& a) {
  constexpr int64_t kMaxTtlMs = 30ll * 24 * 3'600'000;  // MemoryTaskStore::kMaxTtlMs
  if (a.result_ttl_ms < 1 || a.result_ttl_ms > kMaxTtlMs) {
    return Fail("async.result_ttl_ms", "must be between 1 and " + std::to_string(kMaxTtlMs) +
                                           " (30 days)" + Got(a.result_ttl_ms));
  }
  if (a.max_bytes < 1) return Fail("async.max_bytes", "must be at least 1, got 0");
  if (a.max_pending < 1) return Fail("async.max_pending", "must be at least 1, got 0");
  if (a.max_wait_ms < 0 || a.max_wait_ms > 600'000) {
    return Fail("async.max_wait_ms", "must be between 0 and 600000" + Got(a.max_wait_ms));
  }
  return Status::Ok();
}

Status ValidateTracing(const TracingConfig& t) {
  if (!(t.sample_ratio >= 0 && t.sample_ratio <= 1)) {
    return Fail("tracing.sample_ratio",
                "must be between 0 and 1, got " + std::to_string(t.sample_ratio));
  }
  if (t.service_name.empty()) return Fail("tracing.service_name", "must not be empty");
  if (t.export_batch_spans < 1 || t.export_batch_spans > t.max_queue_spans) {
    return Fail("tracing.export_batch_spans", "must be between 1 and max_queue_spans" +
                                                  Got(static_cast<int64_t>(t.export_batch_spans)));
  }
  if (t.max_queue_spans > 1'000'000) {
    return Fail("tracing.max_queue_spans",
                "must be at most 1000000" + Got(static_cast<int64_t>(t.max_queue_spans)));
  }
  if (t.export_interval_ms < 1 || t.export_interval_ms > 60'000) {
    return Fail("tracing.export_interval_ms",
                "must be between 1 and 60000" + Got(t.export_interval_ms));
  }
  if (t.export_timeout_ms < 1 || t.export_timeout_ms > 60'000) {
    return Fail("tracing.export_timeout_ms",
                "must be between 1 and 60000" + Got(t.export_timeout_ms));
  }
  if (!t.otlp_endpoint.empty()) {
    Result<HttpTarget> target = ParseHttpUrl(t.otlp_endpoint);
    if (!target.ok()) return Fail("tracing.otlp_endpoint", target.status().message());
  }
  return Status::Ok();
}

}  // namespace

Status ValidateRequestLog(const RequestLogConfig& log) {
  if (log.backend != "sqlite" && log.backend != "postgres" && log.backend != "memory") {
    return Fail("request_log.backend",
                "must be \"sqlite\", \"postgres\" or \"memory\", got \"" + log.backend + "\"");
  }
  if (log.backend == "sqlite" && log.path.empty()) {
    return Fail("request_log.path", "must name the SQLite database file");
  }
  if (log.backend == "postgres" && log.url.empty()) {
    return Fail("request_log.url", "is required for the postgres backend");
  }
  if (log.buffer_capacity < 1) return Fail("request_log.buffer_capacity", "must be at least 1");
  if (log.flush_batch < 1 || log.flush_batch > log.buffer_capacity) {
    return Fail("request_log.flush_batch", "must be between 1 and buffer_capacity");
  }
  if (log.flush_interval_ms < 1) {
    return Fail("request_log.flush_interval_ms", "must be at least 1" + Got(log.flush_interval_ms));
  }
  if (log.close_timeout_ms < 0) {
    return Fail("request_log.close_timeout_ms", "must be at least 0" + Got(log.close_timeout_ms));
  }
  if (log.retention_hours < 0 || log.retention_hours > 876'000) {
    return Fail("request_log.retention_hours",
                "must be between 0 (keep forever) and 876000" + Got(log.retention_hours));
  }
  return Status::Ok();
}

Status ValidateConfig(const AppConfig& config) {
  if (Status s = ValidateServer(config.server); !s.ok()) return s;
  if (Status s = ValidateTiers(config.tiers); !s.ok()) return s;
  if (Status s = ValidateModels(config.models); !s.ok()) return s;
  const double u = config.admission.target_utilization;
  if (!(u > 0 && u <= 1)) {
    return Fail("admission.target_utilization", "must be in (0, 1], got " + std::to_string(u));
  }
  if (Status s = ValidateKeys(config.keys, config.tiers); !s.ok()) return s;
  if (Status s = ValidateRequestLog(config.request_log); !s.ok()) return s;
  if (Status s = ValidateAsync(config.async); !s.ok()) return s;
  if (Status s = ValidateTracing(config.tracing); !s.ok()) return s;
  // Without a `redis:` section the defaults are unused (`sluice serve`).
  return config.redis.configured ? ValidateRedis(config) : Status::Ok();
}

}  // namespace sluice
