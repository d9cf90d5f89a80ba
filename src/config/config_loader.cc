// ParseConfig() and LoadConfigFile(): YAML text -> AppConfig. The field names
// and layout are those of config/sluice.yaml; ValidateConfig() (validate.cc)
// then checks the values.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace sluice {
namespace {

using config_internal::ElementPath;
using config_internal::FieldReader;
using config_internal::Presence;

// Used when the file has no `tiers` list at all.
std::vector<TierPolicy> DefaultTiers() {
  constexpr int64_t kMaxQueueAgeUs = 2'000'000;
  constexpr int64_t kTotalTimeoutUs = 4'000'000;
  return {
      {"enterprise", 2, 400'000, kMaxQueueAgeUs, kTotalTimeoutUs},
      {"paid", 1, 800'000, kMaxQueueAgeUs, kTotalTimeoutUs},
      {"free", 0, 1'500'000, kMaxQueueAgeUs, kTotalTimeoutUs},
  };
}

void ReadServer(const YAML::Node& node, Status* error, ServerConfig* server) {
  FieldReader r(node, "server", error);
  r.ReadString("listen_address", &server->listen_address);
  r.ReadInteger("port", &server->port);
  r.ReadInteger("io_threads", &server->io_threads);
  r.ReadInteger("max_connections", &server->max_connections);
  r.ReadInteger("body_limit_bytes", &server->body_limit_bytes);
  r.ReadInteger("header_limit_bytes", &server->header_limit_bytes);
  r.ReadInteger("read_timeout_ms", &server->read_timeout_ms);
  r.ReadInteger("idle_timeout_ms", &server->idle_timeout_ms);
  r.ReadInteger("drain_timeout_ms", &server->drain_timeout_ms);
  r.ReadString("service_token_sha256", &server->service_token_sha256);
  r.ReadInteger("recent_requests", &server->recent_requests);
  r.ReadInteger("dead_letter_capacity", &server->dead_letter_capacity);
  r.ReadInteger("watch_client_min_queue_depth", &server->watch_client_min_queue_depth);
  r.ReadInteger("max_header_fields", &server->max_header_fields);
  r.ReadInteger("chunk_extension_limit_bytes", &server->chunk_extension_limit_bytes);
  r.ReadInteger("max_connections_per_client", &server->max_connections_per_client);
  r.ReadInteger("max_bad_requests_per_connection", &server->max_bad_requests_per_connection);
  r.ReadInteger("unauthenticated_memory_limit_bytes", &server->unauthenticated_memory_limit_bytes);
  r.Finish();
}

void ReadAdmin(const YAML::Node& node, Status* error, AdminConfig* admin) {
  if (!node.IsDefined() || node.IsNull()) return;
  admin->enabled = true;
  FieldReader r(node, "admin", error);
  r.ReadString("listen_address", &admin->listen_address);
  r.ReadInteger("port", &admin->port);
  r.Finish();
}

void ReadTracing(const YAML::Node& node, Status* error, TracingConfig* tracing) {
  FieldReader r(node, "tracing", error);
  r.ReadString("otlp_endpoint", &tracing->otlp_endpoint);
  r.ReadDouble("sample_ratio", &tracing->sample_ratio);
  r.ReadString("service_name", &tracing->service_name);
  r.ReadInteger("max_queue_spans", &tracing->max_queue_spans);
  r.ReadInteger("export_batch_spans", &tracing->export_batch_spans);
  r.ReadInteger("export_interval_ms", &tracing->export_interval_ms);
  r.ReadInteger("export_timeout_ms", &tracing->export_timeout_ms);
  r.Finish();
}

void ReadAdmission(const YAML::Node& node, Status* error, AdmissionConfig* admission) {
  FieldReader r(node, "admission", error);
  if (r.Has("enabled")) {
    std::string enabled;
    r.ReadString("enabled", &enabled);
    if (enabled == "true") {
      admission->enabled = true;
    } else if (enabled == "false") {
      admission->enabled = false;
    } else if (r.ok()) {
      r.Error("enabled", "expected true or false, got \"" + enabled + "\"");
    }
  }
  r.ReadDouble("target_utilization", &admission->target_utilization);
  r.Finish();
}

// A list of scalars at `key`, replacing *out when present; an element that
// is not a scalar is reported as "<key>[i]: <expected>".
void ReadScalarList(FieldReader& r, const char* key, const char* expected,
                    std::vector<std::string>* out) {
  std::optional<std::vector<YAML::Node>> list = r.ReadList(key);
  if (!list) return;
  out->clear();
  for (size_t i = 0; i < list->size() && r.ok(); ++i) {
    const YAML::Node& e = (*list)[i];
    if (!e.IsScalar()) {
      r.Error(ElementPath(key, i), expected);
      return;
    }
    out->push_back(e.Scalar());
  }
}

void ReadRedis(const YAML::Node& node, Status* error, RedisConfig* redis) {
  FieldReader r(node, "redis", error);
  r.ReadString("host", &redis->host);
  r.ReadInteger("port", &redis->port);
  r.ReadString("key_prefix", &redis->key_prefix);
  ReadScalarList(r, "cluster_nodes", "expected \"host:port\"", &redis->cluster_nodes);
  r.ReadInteger("queue_shards", &redis->queue_shards);
  r.ReadString("username", &redis->username);
  r.ReadString("password", &redis->password);
  r.ReadString("password_env", &redis->password_env);
  // The secret may stay out of the file: read it from the environment now.
  if (!redis->password_env.empty() && error->ok()) {
    if (!redis->password.empty()) {
      *error = InvalidArgument("redis.password_env: set password or password_env, not both");
    } else if (const char* value = std::getenv(redis->password_env.c_str()); value == nullptr) {
      *error = InvalidArgument("redis.password_env: environment variable " + redis->password_env +
                               " is not set");
    } else {
      redis->password = value;
    }
  }
  r.ReadInteger("connect_timeout_ms", &redis->connect_timeout_ms);
  r.ReadInteger("command_timeout_ms", &redis->command_timeout_ms);
  r.ReadInteger("lease_ms", &redis->lease_ms);
  r.ReadInteger("heartbeat_ttl_ms", &redis->heartbeat_ttl_ms);
  r.ReadString("gateway_id", &redis->gateway_id);
  r.ReadInteger("enqueue_max_delay_us", &redis->enqueue_max_delay_us);
  r.ReadInteger("enqueue_max_batch", &redis->enqueue_max_batch);
  r.Finish();
}

void ReadWorker(const YAML::Node& node, Status* error, WorkerConfig* worker) {
  FieldReader r(node, "worker", error);
  r.ReadString("id", &worker->id);
  r.ReadInteger("max_block_ms", &worker->max_block_ms);
  r.ReadInteger("reap_interval_ms", &worker->reap_interval_ms);
  r.Finish();
}

void ReadRequestLog(const YAML::Node& node, Status* error, RequestLogConfig* log) {
  FieldReader r(node, "request_log", error);
  r.ReadString("backend", &log->backend);
  r.ReadString("path", &log->path);
  r.ReadString("url", &log->url);
  r.ReadInteger("buffer_capacity", &log->buffer_capacity);
  r.ReadInteger("flush_batch", &log->flush_batch);
  r.ReadInteger("flush_interval_ms", &log->flush_interval_ms);
  r.ReadInteger("close_timeout_ms", &log->close_timeout_ms);
  r.ReadInteger("retention_hours", &log->retention_hours);
  r.Finish();
}

void ReadQueue(const YAML::Node& node, Status* error, QueueOrdering* ordering) {
  FieldReader r(node, "queue", error);
  std::optional<std::string> name;
  if (r.Has("ordering")) {
    name.emplace();
    r.ReadString("ordering", &*name);
  }
  if (r.ok() && name) {
    if (*name == "edf") {
      *ordering = QueueOrdering::kEarliestDeadlineFirst;
    } else if (*name == "strict") {
      *ordering = QueueOrdering::kStrictPriority;
    } else {
      r.Error("ordering", "unknown ordering \"" + *name + "\" (supported: edf, strict)");
    }
  }
  r.Finish();
}

void ReadAsync(const YAML::Node& node, Status* error, AsyncConfig* async) {
  FieldReader r(node, "async", error);
  r.ReadInteger("result_ttl_ms", &async->result_ttl_ms);
  r.ReadInteger("max_bytes", &async->max_bytes);
  r.ReadInteger("max_pending", &async->max_pending);
  r.ReadInteger("max_wait_ms", &async->max_wait_ms);
  r.Finish();
}

TierPolicy ReadTier(const YAML::Node& node, const std::string& path, Status* error) {
  TierPolicy tier;
  FieldReader r(node, path, error);
  r.ReadString("name", &tier.name, Presence::kRequired);
  r.ReadInteger("priority", &tier.priority);
  r.ReadMillisAsMicros("latency_budget_ms", &tier.latency_budget_us);
  r.ReadMillisAsMicros("max_queue_age_ms", &tier.max_queue_age_us);
  r.ReadMillisAsMicros("total_timeout_ms", &tier.total_timeout_us);
  r.ReadInteger("requests_per_minute", &tier.requests_per_minute);
  r.ReadInteger("tokens_per_minute", &tier.tokens_per_minute);
  r.ReadInteger("max_queue_depth", &tier.max_queue_depth);
  r.ReadInteger("max_queue_depth_per_device", &tier.max_queue_depth_per_device);
  r.ReadMillisAsMicros("async_budget_ms", &tier.async_budget_us);
  r.Finish();
  return tier;
}

// The YAML `backend` mapping is flat; only the fields of the chosen kind are
// read, so a field of another kind reads as an unknown field.
void ReadHttpBackend(FieldReader& r, const std::string& kind, HttpBackendConfig* http) {
  ReadScalarList(r, "endpoints", "expected a URL string", &http->endpoints);
  r.ReadInteger("connections_per_endpoint", &http->connections_per_endpoint);
  r.ReadInteger("connect_timeout_ms", &http->connect_timeout_ms);
  r.ReadInteger("request_timeout_ms", &http->request_timeout_ms);
  r.ReadString("remote_model", &http->remote_model);
  if (kind == "openai") r.ReadString("openai_api", &http->openai_api);
  r.ReadString("tls_ca_file", &http->tls_ca_file);
  r.ReadString("tls_cert_file", &http->tls_cert_file);
  r.ReadString("tls_key_file", &http->tls_key_file);
}

void ReadBackend(const YAML::Node& node, const std::string& path, Status* error,
                 BackendConfig* backend) {
  FieldReader r(node, path, error);
  r.ReadString("kind", &backend->kind);
  if (backend->kind == "http" || backend->kind == "openai" || backend->kind == "kserve") {
    ReadHttpBackend(r, backend->kind, &backend->http);
  } else {  // sim, or an unknown kind that ValidateConfig() reports
    r.ReadInteger("devices", &backend->sim.devices);
    r.ReadInteger("fixed_latency_us", &backend->sim.fixed_latency_us);
    r.ReadInteger("per_item_latency_us", &backend->sim.per_item_latency_us);
    r.ReadDouble("jitter", &backend->sim.jitter);
    r.ReadInteger("seed", &backend->sim.seed);
  }
  r.Finish();
}

void ReadRetry(const YAML::Node& node, const std::string& path, Status* error, RetryPolicy* retry) {
  FieldReader r(node, path, error);
  r.ReadInteger("max_retries", &retry->max_retries);
  r.ReadMillisAsMicros("initial_backoff_ms", &retry->initial_backoff_us);
  r.ReadMillisAsMicros("max_backoff_ms", &retry->max_backoff_us);
  r.ReadDouble("jitter", &retry->jitter);
  r.Finish();
}

void ReadBreaker(const YAML::Node& node, const std::string& path, Status* error,
                 CircuitBreaker::Options* breaker) {
  FieldReader r(node, path, error);
  r.ReadInteger("consecutive_failures", &breaker->consecutive_failures);
  r.ReadDouble("failure_ratio", &breaker->failure_ratio);
  r.ReadInteger("window", &breaker->ratio_window);
  r.ReadInteger("min_batches", &breaker->ratio_min_batches);
  r.ReadInteger("cooldown_ms", &breaker->open_cooldown_ms);
  const bool has_max = r.Has("max_cooldown_ms");
  r.ReadInteger("max_cooldown_ms", &breaker->max_cooldown_ms);
  // No doubling unless asked for: without a max, the cap is the cooldown.
  if (!has_max) breaker->max_cooldown_ms = breaker->open_cooldown_ms;
  r.Finish();
}

void ReadCache(const YAML::Node& node, const std::string& path, Status* error,
               ModelCacheConfig* cache) {
  FieldReader r(node, path, error);
  r.ReadBool("enabled", &cache->enabled);
  r.ReadInteger("ttl_ms", &cache->ttl_ms);
  r.ReadInteger("max_bytes", &cache->max_bytes);
  r.Finish();
}

void ReadChatTemplate(const YAML::Node& node, const std::string& path, Status* error,
                      ChatTemplate* chat) {
  FieldReader r(node, path, error);
  r.ReadString("system", &chat->system);
  r.ReadString("user", &chat->user);
  r.ReadString("assistant", &chat->assistant);
  r.ReadString("generation_prompt", &chat->generation_prompt);
  r.Finish();
}

ModelConfig ReadModel(const YAML::Node& node, const std::string& path, Status* error) {
  ModelConfig model;
  FieldReader r(node, path, error);
  r.ReadString("name", &model.name, Presence::kRequired);
  const bool has_version = r.Has("version");
  r.ReadString("version", &model.version);
  r.ReadInteger("max_batch_size", &model.max_batch_size);
  r.ReadInteger("max_batch_delay_us", &model.max_batch_delay_us);
  r.ReadInteger("async_fill_max_batch_size", &model.async_fill_max_batch_size);
  if (r.Has("batching")) {
    std::string batching;
    r.ReadString("batching", &batching);
    if (batching == "adaptive") {
      model.batching = BatchingMode::kAdaptive;
    } else if (batching == "static") {
      model.batching = BatchingMode::kStatic;
    } else if (r.ok()) {
      r.Error("batching", "expected adaptive or static, got \"" + batching + "\"");
    }
  }
  r.ReadInteger("queue_capacity", &model.queue_capacity);
  r.ReadInteger("accelerator_timeout_ms", &model.accelerator_timeout_ms);
  r.ReadInteger("max_tokens_limit", &model.max_tokens_limit);
  r.ReadInteger("default_max_tokens", &model.default_max_tokens);
  ReadBackend(r.ReadNode("backend"), r.PathOf("backend"), error, &model.backend);
  ReadRetry(r.ReadNode("retry"), r.PathOf("retry"), error, &model.retry);
  ReadBreaker(r.ReadNode("circuit_breaker"), r.PathOf("circuit_breaker"), error,
              &model.circuit_breaker);
  r.ReadBool("deterministic", &model.deterministic);
  ReadCache(r.ReadNode("cache"), r.PathOf("cache"), error, &model.cache);
  r.ReadBool("collapse", &model.collapse);
  if (r.Has("task")) {
    std::string task;
    r.ReadString("task", &task);
    if (task == "completions") {
      model.task = ModelTask::kCompletions;
    } else if (task == "embeddings") {
      model.task = ModelTask::kEmbeddings;
    } else if (r.ok()) {
      r.Error("task", "expected completions or embeddings, got \"" + task + "\"");
    }
  } else if (model.backend.kind == "openai" && model.backend.http.openai_api == "embeddings") {
    model.task = ModelTask::kEmbeddings;
  }
  r.ReadInteger("embedding_dimensions", &model.embedding_dimensions);
  r.ReadBool("accepts_dimensions", &model.accepts_dimensions);
  ReadChatTemplate(r.ReadNode("chat_template"), r.PathOf("chat_template"), error,
                   &model.chat_template);
  r.Finish();
  if (!has_version) model.version = model.name + "-v1";
  return model;
}

ApiKeyConfig ReadKey(const YAML::Node& node, const std::string& path, Status* error) {
  ApiKeyConfig key;
  FieldReader r(node, path, error);
  r.ReadString("id", &key.id, Presence::kRequired);
  r.ReadString("tier", &key.tier, Presence::kRequired);
  r.ReadString("sha256", &key.sha256, Presence::kRequired);
  r.ReadInteger("requests_per_minute", &key.requests_per_minute);
  r.ReadInteger("tokens_per_minute", &key.tokens_per_minute);
  r.Finish();
  return key;
}

// Reads every element of the list `key` of `root` with `read_one`.
template <typename T, typename ReadOne>
std::optional<std::vector<T>> ReadEach(FieldReader& root, const char* key, Status* error,
                                       ReadOne read_one) {
  std::optional<std::vector<YAML::Node>> nodes = root.ReadList(key);
  if (!nodes) return std::nullopt;
  std::vector<T> out;
  for (size_t i = 0; i < nodes->size() && error->ok(); ++i) {
    out.push_back(read_one((*nodes)[i], ElementPath(key, i), error));
  }
  return out;
}

AppConfig ReadAppConfig(const YAML::Node& document, Status* error) {
  AppConfig config;
  FieldReader root(document, "", error);
  ReadServer(root.ReadNode("server"), error, &config.server);
  ReadAdmin(root.ReadNode("admin"), error, &config.admin);
  ReadQueue(root.ReadNode("queue"), error, &config.ordering);
  ReadAdmission(root.ReadNode("admission"), error, &config.admission);
  ReadRequestLog(root.ReadNode("request_log"), error, &config.request_log);
  config.redis.configured = root.Has("redis");
  ReadRedis(root.ReadNode("redis"), error, &config.redis);
  ReadWorker(root.ReadNode("worker"), error, &config.worker);
  ReadAsync(root.ReadNode("async"), error, &config.async);
  ReadTracing(root.ReadNode("tracing"), error, &config.tracing);
  config.tiers = ReadEach<TierPolicy>(root, "tiers", error, ReadTier).value_or(DefaultTiers());
  if (auto models = ReadEach<ModelConfig>(root, "models", error, ReadModel)) {
    config.models = std::move(*models);
  }
  if (auto keys = ReadEach<ApiKeyConfig>(root, "keys", error, ReadKey)) {
    config.keys = std::move(*keys);
  }
  root.Finish();
  return config;
}

Status WithSource(const std::string& source, const Status& status) {
  if (source.empty()) return status;
  return Status(status.code(), source + ": " + status.message());
}

}  // namespace

Result<AppConfig> ParseConfig(const std::string& yaml_text, const std::string& source) {
  YAML::Node document;
  try {
    document = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp counts lines and columns from 0.
    return WithSource(
        source, InvalidArgument("YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                                ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg));
  }
  Status error;
  AppConfig config;
  try {
    config = ReadAppConfig(document, &error);
  } catch (const std::exception& e) {  // the reader avoids throwing calls; belt and braces
    return WithSource(source, InvalidArgument(std::string("cannot read YAML: ") + e.what()));
  }
  if (!error.ok()) return WithSource(source, error);
  if (Status status = ValidateConfig(config); !status.ok()) return WithSource(source, status);
  return config;
}

Result<AppConfig> LoadConfigFile(const std::string& path) {
  auto fail = [&path](int err) {
    return InvalidArgument("cannot read config file " + path + ": " + std::strerror(err));
  };
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return fail(errno);
  std::string text;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) return fail(errno);  // e.g. EISDIR for a directory
  Result<AppConfig> config = ParseConfig(text, path);
  if (config.ok()) {
    config->source_path = path;
    config->source_text = std::move(text);
  }
  return config;
}

}  // namespace sluice
