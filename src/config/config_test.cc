// ParseConfig() / LoadConfigFile(): the bundled file, defaults, and the
// messages a user gets for typos, wrong types, bad YAML and missing files.
// The value rules themselves are covered in validate_test.cc.

#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/crypto.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kSourceDir = SLUICE_SOURCE_DIR;

// The message of a config that must fail; no source, so the message is bare.
std::string ParseError(const std::string& yaml) {
  Result<AppConfig> result = ParseConfig(yaml, "");
  EXPECT_FALSE(result.ok()) << "parsed:\n" << yaml;
  EXPECT_EQ(result.status().code(), ErrorCode::kInvalidArgument);
  return result.status().message();
}

constexpr char kMinimal[] = "models:\n  - name: tiny\n";

TEST(ParseConfigTest, ModelTaskAndChatTemplate) {
  Result<AppConfig> c = ParseConfig(
      "models:\n  - name: e\n    task: embeddings\n    embedding_dimensions: 8\n"
      "    accepts_dimensions: true\n  - name: g\n    chat_template:\n"
      "      user: \"U {content}\"\n      generation_prompt: \"A \"\n",
      "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->models[0].task, ModelTask::kEmbeddings);
  EXPECT_EQ(c->models[0].embedding_dimensions, 8);
  EXPECT_TRUE(c->models[0].accepts_dimensions);
  EXPECT_EQ(c->models[1].task, ModelTask::kCompletions);
  EXPECT_EQ(c->models[1].chat_template.user, "U {content}");
  EXPECT_EQ(c->models[1].chat_template.generation_prompt, "A ");
  EXPECT_EQ(c->models[1].chat_template.system, ChatTemplate().system);
  Result<AppConfig> bad = ParseConfig("models:\n  - name: e\n    task: rerank\n", "x.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "x.yaml: models[0].task: expected completions or embeddings, got \"rerank\"");
}

TEST(LoadConfigFileTest, BundledConfigParses) {
  Result<AppConfig> result = LoadConfigFile(kSourceDir + "/config/sluice.yaml");
  ASSERT_TRUE(result.ok()) << result.status().message();
  const AppConfig& c = result.value();

  EXPECT_EQ(c.server.listen_address, "127.0.0.1");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.io_threads, 2);
  EXPECT_EQ(c.server.body_limit_bytes, 1048576u);
  EXPECT_EQ(c.server.header_limit_bytes, 16384u);
  EXPECT_EQ(c.server.service_token_sha256, ToHex(Sha256("svc-demo-token")));
  EXPECT_EQ(c.ordering, QueueOrdering::kEarliestDeadlineFirst);

  ASSERT_EQ(c.tiers.size(), 3u);
  EXPECT_EQ(c.tiers[0].name, "enterprise");
  EXPECT_EQ(c.tiers[0].priority, 2);
  EXPECT_EQ(c.tiers[0].latency_budget_us, 400'000);
  EXPECT_EQ(c.tiers[2].name, "free");
  EXPECT_EQ(c.tiers[2].latency_budget_us, 1'500'000);
  EXPECT_EQ(c.tiers[2].max_queue_age_us, 2'000'000);
  EXPECT_EQ(c.tiers[2].total_timeout_us, 4'000'000);

  ASSERT_EQ(c.models.size(), 2u);
  const ModelConfig& m = c.models[0];
  EXPECT_EQ(m.name, "sluice-sim-small");
  EXPECT_EQ(m.version, "sluice-sim-small-2026-11");
  EXPECT_EQ(m.max_batch_size, 32u);
  EXPECT_EQ(m.max_batch_delay_us, 20'000);
  EXPECT_EQ(m.async_fill_max_batch_size, 24u);
  EXPECT_EQ(m.backend.kind, "sim");
  EXPECT_EQ(m.backend.sim.devices, 4);
  EXPECT_EQ(m.backend.sim.fixed_latency_us, 34'000);
  EXPECT_DOUBLE_EQ(m.backend.sim.jitter, 0.05);
  EXPECT_EQ(m.task, ModelTask::kCompletions);
  EXPECT_EQ(m.chat_template.user, "<|user|>\n{content}\n");
  const ModelConfig& embed = c.models[1];
  EXPECT_EQ(embed.name, "sluice-sim-embed");
  EXPECT_EQ(embed.task, ModelTask::kEmbeddings);
  EXPECT_EQ(embed.embedding_dimensions, 256);
  EXPECT_TRUE(embed.accepts_dimensions);

  // The demo keys the file's header comment (and the README) hand out.
  ASSERT_EQ(c.keys.size(), 3u);
  EXPECT_EQ(c.keys[0].id, "demo-free");
  EXPECT_EQ(c.keys[0].tier, "free");
  EXPECT_EQ(c.keys[0].sha256, ToHex(Sha256("sk-free-demo-0001")));
  EXPECT_EQ(c.keys[1].sha256, ToHex(Sha256("sk-paid-demo-0001")));
  EXPECT_EQ(c.keys[2].sha256, ToHex(Sha256("sk-enterprise-demo-0001")));
}

TEST(LoadConfigFileTest, EveryExampleConfigParses) {
  for (const char* name :
       {"sluice.yaml", "sluice-http.yaml", "sluice-openai.yaml", "sluice-kserve.yaml"}) {
    Result<AppConfig> c = LoadConfigFile(std::string(SLUICE_SOURCE_DIR) + "/config/" + name);
    EXPECT_TRUE(c.ok()) << name << ": " << c.status().message();
  }
}

TEST(ParseConfigTest, MinimalConfigGetsDefaults) {
  Result<AppConfig> result = ParseConfig(kMinimal, "minimal.yaml");
  ASSERT_TRUE(result.ok()) << result.status().message();
  const AppConfig& c = result.value();
  const ServerConfig defaults;
  EXPECT_EQ(c.server.listen_address, defaults.listen_address);
  EXPECT_EQ(c.server.port, defaults.port);
  EXPECT_EQ(c.server.max_connections, defaults.max_connections);
  EXPECT_EQ(c.server.read_timeout_ms, defaults.read_timeout_ms);
  EXPECT_EQ(c.server.service_token_sha256, "");
  EXPECT_EQ(c.ordering, QueueOrdering::kEarliestDeadlineFirst);

  ASSERT_EQ(c.tiers.size(), 3u);
  const char* names[] = {"enterprise", "paid", "free"};
  const int priorities[] = {2, 1, 0};
  const int64_t budgets_us[] = {400'000, 800'000, 1'500'000};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.tiers[i].name, names[i]);
    EXPECT_EQ(c.tiers[i].priority, priorities[i]);
    EXPECT_EQ(c.tiers[i].latency_budget_us, budgets_us[i]);
    EXPECT_EQ(c.tiers[i].max_queue_age_us, 2'000'000);
    EXPECT_EQ(c.tiers[i].total_timeout_us, 4'000'000);
  }

  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].version, "tiny-v1");
  EXPECT_EQ(c.models[0].max_batch_size, ModelConfig{}.max_batch_size);
  EXPECT_EQ(c.models[0].backend.kind, "sim");
  EXPECT_EQ(c.models[0].backend.sim.devices, 1);
  EXPECT_TRUE(c.keys.empty());
}

TEST(ParseConfigTest, PartialSectionsKeepOtherDefaults) {
  Result<AppConfig> result = ParseConfig(
      "server:\n  port: 9000\nqueue:\n  ordering: strict\n"
      "models:\n  - name: tiny\n    backend:\n      devices: 8\n",
      "");
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->server.port, 9000);
  EXPECT_EQ(result->server.io_threads, ServerConfig{}.io_threads);
  EXPECT_EQ(result->ordering, QueueOrdering::kStrictPriority);
  EXPECT_EQ(result->models[0].backend.sim.devices, 8);
  EXPECT_EQ(result->models[0].backend.sim.per_item_latency_us,
            SimBackendConfig{}.per_item_latency_us);
}

TEST(ParseConfigTest, ModelCacheAndCollapseFieldsAndDefaults) {
  Result<AppConfig> off = ParseConfig(kMinimal, "");
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_FALSE(off->models[0].cache.enabled);
  EXPECT_FALSE(off->models[0].deterministic);
  EXPECT_FALSE(off->models[0].collapse);
  EXPECT_EQ(off->models[0].cache.ttl_ms, 300'000);
  EXPECT_EQ(off->models[0].cache.max_bytes, 64ull << 20);
  Result<AppConfig> on = ParseConfig(
      "models:\n  - name: tiny\n    deterministic: true\n    collapse: true\n"
      "    cache:\n      enabled: true\n      ttl_ms: 5000\n      max_bytes: 1024\n",
      "");
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_TRUE(on->models[0].cache.enabled);
  EXPECT_TRUE(on->models[0].deterministic);
  EXPECT_TRUE(on->models[0].collapse);
  EXPECT_EQ(on->models[0].cache.ttl_ms, 5000);
  EXPECT_EQ(on->models[0].cache.max_bytes, 1024u);
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    cache:\n      enabled: yes\n"),
            "models[0].cache.enabled: expected true or false, got \"yes\"");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    collapse: 1\n"),
            "models[0].collapse: expected true or false, got \"1\"");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    cache:\n      ttl_ms: 0\n"),
            "models[0].cache.ttl_ms: must be between 1 and 2592000000 (30 days), got 0");
}

TEST(ParseConfigTest, HttpBackendFields) {
  Result<AppConfig> result = ParseConfig(
      "models:\n  - name: tiny\n    backend:\n      kind: openai\n"
      "      endpoints: [\"http://127.0.0.1:9001\", \"https://gpu-2:8443/v1\"]\n"
      "      connections_per_endpoint: 4\n      connect_timeout_ms: 250\n"
      "      request_timeout_ms: 1500\n      remote_model: llama\n"
      "      openai_api: embeddings\n      tls_ca_file: ca.pem\n"
      "      tls_cert_file: client.pem\n      tls_key_file: client.key\n",
      "");
  ASSERT_TRUE(result.ok()) << result.status().message();
  const BackendConfig& b = result->models[0].backend;
  EXPECT_EQ(b.kind, "openai");
  EXPECT_THAT(b.http.endpoints,
              ::testing::ElementsAre("http://127.0.0.1:9001", "https://gpu-2:8443/v1"));
  EXPECT_EQ(b.http.connections_per_endpoint, 4);
  EXPECT_EQ(b.http.connect_timeout_ms, 250);
  EXPECT_EQ(b.http.request_timeout_ms, 1500);
  EXPECT_EQ(b.http.remote_model, "llama");
  EXPECT_EQ(b.http.openai_api, "embeddings");
  EXPECT_EQ(b.http.tls_ca_file, "ca.pem");
  EXPECT_EQ(b.http.tls_cert_file, "client.pem");
  EXPECT_EQ(b.http.tls_key_file, "client.key");
}

TEST(ParseConfigTest, BackendFieldsOfAnotherKindAreUnknown) {
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      kind: http\n"
                       "      endpoints: [\"http://a\"]\n      devices: 2\n"),
            "models[0].backend.devices: unknown field");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      endpoints: [\"http://a\"]\n"),
            "models[0].backend.endpoints: unknown field");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      kind: kserve\n"
                       "      endpoints: [\"http://a\"]\n      openai_api: embeddings\n"),
            "models[0].backend.openai_api: unknown field");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      kind: http\n"
                       "      endpoints: [[1]]\n"),
            "models[0].backend.endpoints[0]: expected a URL string");
}

TEST(ParseConfigTest, ExplicitTiersReplaceTheDefaults) {
  Result<AppConfig> result = ParseConfig(
      "tiers:\n  - name: only\n    latency_budget_ms: 250\n"
      "models:\n  - name: tiny\n",
      "");
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->tiers.size(), 1u);
  EXPECT_EQ(result->tiers[0].name, "only");
  EXPECT_EQ(result->tiers[0].latency_budget_us, 250'000);
  EXPECT_EQ(result->tiers[0].total_timeout_us, TierPolicy{}.total_timeout_us);
}

TEST(ParseConfigTest, AsyncSectionAndTierBudget) {
  Result<AppConfig> defaults = ParseConfig(kMinimal, "");
  ASSERT_TRUE(defaults.ok()) << defaults.status().message();
  EXPECT_EQ(defaults->async.result_ttl_ms, 600'000);
  EXPECT_EQ(defaults->async.max_bytes, 256ull << 20);
  EXPECT_EQ(defaults->async.max_pending, 100'000u);
  EXPECT_EQ(defaults->async.max_wait_ms, 30'000);
  EXPECT_EQ(defaults->tiers[0].async_budget_us, 60'000'000);
  Result<AppConfig> set = ParseConfig(
      "async:\n  result_ttl_ms: 1000\n  max_bytes: 2048\n  max_pending: 5\n  max_wait_ms: 0\n"
      "tiers:\n  - name: only\n    async_budget_ms: 90000\n"
      "models:\n  - name: tiny\n",
      "");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->async.result_ttl_ms, 1000);
  EXPECT_EQ(set->async.max_bytes, 2048u);
  EXPECT_EQ(set->async.max_pending, 5u);
  EXPECT_EQ(set->async.max_wait_ms, 0);
  EXPECT_EQ(set->tiers[0].async_budget_us, 90'000'000);
  EXPECT_EQ(ParseError("async:\n  result_ttl_ms: 0\nmodels:\n  - name: tiny\n"),
            "async.result_ttl_ms: must be between 1 and 2592000000 (30 days), got 0");
  EXPECT_EQ(ParseError("async:\n  max_wait_ms: 600001\nmodels:\n  - name: tiny\n"),
            "async.max_wait_ms: must be between 0 and 600000, got 600001");
  EXPECT_EQ(ParseError("async:\n  ttl: 5\nmodels:\n  - name: tiny\n"), "async.ttl: unknown field");
  EXPECT_EQ(ParseError("tiers:\n  - name: only\n    async_budget_ms: 0\nmodels:\n  - name: tiny\n"),
            "tiers[0].async_budget_ms: must be greater than 0, got 0");
}

TEST(ParseConfigTest, RateLimitsAdmissionAndKeyOverrides) {
  Result<AppConfig> result = ParseConfig(
      "admission:\n  enabled: false\n  target_utilization: 0.6\n"
      "tiers:\n  - name: free\n    requests_per_minute: 60\n    tokens_per_minute: 5000\n"
      "    max_queue_depth: 50\n"
      "models:\n  - name: tiny\n"
      "keys:\n  - id: k\n    tier: free\n    sha256: " +
          std::string(64, 'a') + "\n    requests_per_minute: 10\n",
      "");
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_FALSE(result->admission.enabled);
  EXPECT_DOUBLE_EQ(result->admission.target_utilization, 0.6);
  EXPECT_EQ(result->tiers[0].requests_per_minute, 60);
  EXPECT_EQ(result->tiers[0].tokens_per_minute, 5000);
  EXPECT_EQ(result->tiers[0].max_queue_depth, 50);
  EXPECT_EQ(result->keys[0].requests_per_minute, 10);
  EXPECT_EQ(result->keys[0].tokens_per_minute, -1);  // the tier's
  Result<AppConfig> bad = ParseConfig("admission:\n  enabled: maybe\nmodels:\n  - name: t\n", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("admission.enabled: ", 0), 0u) << bad.status().message();
}

TEST(ParseConfigTest, ErrorsNameTheSource) {
  Result<AppConfig> result =
      ParseConfig("models:\n  - name: tiny\n    max_batch_size: 0\n", "/etc/sluice.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "/etc/sluice.yaml: models[0].max_batch_size: must be between 1 and 4096, got 0");
}

TEST(ParseConfigTest, UnknownFieldsAreNamed) {
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    max_batch_sise: 8\n"),
            "models[0].max_batch_sise: unknown field (did you mean max_batch_size?)");
  EXPECT_EQ(ParseError("sever:\n  port: 1\nmodels:\n  - name: tiny\n"),
            "sever: unknown field (did you mean server?)");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      gpus: 2\n"),
            "models[0].backend.gpus: unknown field");
  EXPECT_EQ(ParseError(std::string(kMinimal) + "keys:\n  - {id: a, tier: free, sha: x}\n"),
            "keys[0].sha: unknown field");
  EXPECT_EQ(ParseError("models:\n  - nme: tiny\n"),
            "models[0].nme: unknown field (did you mean name?)");
}

TEST(ParseConfigTest, RepeatedFieldIsAnError) {
  EXPECT_EQ(ParseError("server:\n  port: 1\n  port: 2\n" + std::string(kMinimal)),
            "server.port: field given twice");
}

TEST(ParseConfigTest, WrongTypesAreNamed) {
  const std::string m = kMinimal;
  EXPECT_EQ(ParseError("server:\n  port: abc\n" + m),
            "server.port: expected an integer between 0 and 65535, got \"abc\"");
  EXPECT_EQ(ParseError("server:\n  port: 70000\n" + m),
            "server.port: expected an integer between 0 and 65535, got \"70000\"");
  EXPECT_EQ(ParseError("server:\n  recent_requests: -1\n" + m),
            "server.recent_requests: expected a non-negative integer, got \"-1\"");
  EXPECT_THAT(ParseError("server:\n  io_threads: 2.5\n" + m),
              StartsWith("server.io_threads: expected an integer between "));
  EXPECT_EQ(ParseError("server:\n  listen_address: [a, b]\n" + m),
            "server.listen_address: expected a string, got a list");
  EXPECT_EQ(ParseError("server:\n  listen_address:\n" + m),
            "server.listen_address: expected a string, got null");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      jitter: high\n"),
            "models[0].backend.jitter: expected a number, got \"high\"");
  EXPECT_EQ(ParseError("models:\n  - name: tiny\n    backend:\n      jitter: .nan\n"),
            "models[0].backend.jitter: expected a number, got \".nan\"");
  EXPECT_EQ(ParseError("server: 5\n" + m), "server: expected a mapping, got \"5\"");
  EXPECT_EQ(ParseError("tiers:\n  name: free\n" + m), "tiers: expected a list, got a mapping");
  EXPECT_EQ(ParseError("models:\n  - tiny\n"), "models[0]: expected a mapping, got \"tiny\"");
  EXPECT_EQ(ParseError("just text"), "document: expected a mapping, got \"just text\"");
  EXPECT_EQ(ParseError("queue:\n  ordering: fifo\n" + m),
            "queue.ordering: unknown ordering \"fifo\" (supported: edf, strict)");
  EXPECT_THAT(ParseError("tiers:\n  - name: t\n    total_timeout_ms: 99999999999999999\n" + m),
              StartsWith("tiers[0].total_timeout_ms: expected an integer between "));
}

TEST(ParseConfigTest, RequiredFieldsAreNamed) {
  EXPECT_EQ(ParseError("models:\n  - version: v2\n"), "models[0].name: required field is missing");
  EXPECT_EQ(ParseError("tiers:\n  - priority: 1\n" + std::string(kMinimal)),
            "tiers[0].name: required field is missing");
  EXPECT_EQ(ParseError(std::string(kMinimal) + "keys:\n  - id: a\n    tier: free\n"),
            "keys[0].sha256: required field is missing");
  EXPECT_EQ(ParseError("server:\n  port: 1\n"), "models: at least one model is required");
  EXPECT_EQ(ParseError(""), "models: at least one model is required");
  EXPECT_EQ(ParseError("tiers: []\n" + std::string(kMinimal)),
            "tiers: at least one tier is required");
}

TEST(ParseConfigTest, YamlSyntaxErrorReportsLineAndColumn) {
  std::string message = ParseError("server:\n  port: 8080\n  listen_address: [127.0.0.1\n");
  EXPECT_THAT(message, StartsWith("YAML syntax error at line "));
  EXPECT_THAT(message, HasSubstr(", column "));
  EXPECT_EQ(ParseError("server:\n  port: 1\n bad: 2\n"),
            "YAML syntax error at line 3, column 2: end of map not found");
}

TEST(LoadConfigFileTest, MissingFileIsReported) {
  Result<AppConfig> result = LoadConfigFile("/nonexistent/sluice.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "cannot read config file /nonexistent/sluice.yaml: No such file or directory");
}

TEST(LoadConfigFileTest, DirectoryIsReported) {
  Result<AppConfig> result = LoadConfigFile(kSourceDir + "/config");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "cannot read config file " + kSourceDir + "/config: Is a directory");
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(LoadConfigFileTest, ClusterConfigParsesWithRedis) {
  Result<AppConfig> result = LoadConfigFile(kSourceDir + "/config/cluster.yaml");
  ASSERT_TRUE(result.ok()) << result.status().message();
  const AppConfig& c = result.value();
  EXPECT_TRUE(c.redis.configured);
  EXPECT_EQ(c.redis.port, 16390);
  EXPECT_EQ(c.redis.key_prefix, "sluice");
  EXPECT_EQ(c.redis.lease_ms, 2'000);
  EXPECT_TRUE(c.redis.gateway_id.empty());
  EXPECT_EQ(c.worker.max_block_ms, 500);
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].backend.http.endpoints.size(), 3u);
}

TEST(ParseConfigTest, RedisSectionIsOptionalAndTyposAreNamed) {
  Result<AppConfig> plain = ParseConfig(kMinimal, "");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->redis.configured);
  EXPECT_THAT(ParseError(std::string(kMinimal) + "redis:\n  prot: 1\n"),
              StartsWith("redis.prot: "));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "redis:\n  port: x\n"),
              StartsWith("redis.port: "));
}

TEST(ParseConfigTest, RedisClusterNodesAreHostPortPairs) {
  Result<AppConfig> c = ParseConfig(
      std::string(kMinimal) + "redis:\n  cluster_nodes: [\"127.0.0.1:7000\", \"db-2:7001\"]\n", "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->redis.cluster_nodes, (std::vector<std::string>{"127.0.0.1:7000", "db-2:7001"}));
  EXPECT_EQ(ParseError(std::string(kMinimal) + "redis:\n  cluster_nodes: [\"db-1\"]\n"),
            "redis.cluster_nodes[0]: expected \"host:port\" with a port in 1..65535, got \"db-1\"");
  EXPECT_EQ(
      ParseError(std::string(kMinimal) + "redis:\n  cluster_nodes: [\"a:1\", \"b:70000\"]\n"),
      "redis.cluster_nodes[1]: expected \"host:port\" with a port in 1..65535, got \"b:70000\"");
  EXPECT_EQ(ParseError(std::string(kMinimal) + "redis:\n  cluster_nodes: [[1]]\n"),
            "redis.cluster_nodes[0]: expected \"host:port\"");
}

TEST(ParseConfigTest, RedisPasswordFromTheFileOrTheEnvironment) {
  Result<AppConfig> inline_pw =
      ParseConfig(std::string(kMinimal) + "redis:\n  username: gw\n  password: from-file\n", "");
  ASSERT_TRUE(inline_pw.ok()) << inline_pw.status().message();
  EXPECT_EQ(inline_pw->redis.username, "gw");
  EXPECT_EQ(inline_pw->redis.password, "from-file");
  ::setenv("SLUICE_TEST_REDIS_PW", "from-env", 1);
  Result<AppConfig> env_pw =
      ParseConfig(std::string(kMinimal) + "redis:\n  password_env: SLUICE_TEST_REDIS_PW\n", "");
  ASSERT_TRUE(env_pw.ok()) << env_pw.status().message();
  EXPECT_EQ(env_pw->redis.password, "from-env");
  EXPECT_EQ(ParseError(std::string(kMinimal) +
                       "redis:\n  password: a\n  password_env: SLUICE_TEST_REDIS_PW\n"),
            "redis.password_env: set password or password_env, not both");
  ::unsetenv("SLUICE_TEST_REDIS_PW");
  EXPECT_EQ(ParseError(std::string(kMinimal) + "redis:\n  password_env: SLUICE_TEST_REDIS_PW\n"),
            "redis.password_env: environment variable SLUICE_TEST_REDIS_PW is not set");
}

TEST(ParseConfigTest, RequestLogRetentionDefaultsToForeverAndIsChecked) {
  Result<AppConfig> plain = ParseConfig(kMinimal, "");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->request_log.retention_hours, 0);  // keep forever
  Result<AppConfig> week =
      ParseConfig(std::string(kMinimal) + "request_log:\n  retention_hours: 168\n", "");
  ASSERT_TRUE(week.ok()) << week.status().message();
  EXPECT_EQ(week->request_log.retention_hours, 168);
  EXPECT_THAT(ParseError(std::string(kMinimal) + "request_log:\n  retention_hours: -1\n"),
              StartsWith("request_log.retention_hours: "));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "request_log:\n  retention_hours: 1000000\n"),
              HasSubstr("876000"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "request_log:\n  retention_hours: a week\n"),
              StartsWith("request_log.retention_hours: "));
}

}  // namespace
}  // namespace sluice
