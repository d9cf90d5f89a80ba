// ValidateConfig(): one case per rule. Each starts from a valid config, breaks
// one field, and checks the error names that field by its YAML path.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <string>

#include "common/crypto.h"
#include "config/config.h"

namespace sluice {
namespace {

using ::testing::StartsWith;

AppConfig ValidConfig() {
  AppConfig config;
  config.server.service_token_sha256 = ToHex(Sha256("token"));
  config.tiers = {{"paid", 1, 800'000, 2'000'000, 4'000'000},
                  {"free", 0, 1'500'000, 2'000'000, 4'000'000}};
  ModelConfig model;
  model.name = "m";
  model.version = "m-v1";
  config.models = {model};
  config.keys = {{"key-a", "free", ToHex(Sha256("a"))}, {"key-b", "paid", ToHex(Sha256("b"))}};
  return config;
}

TEST(ValidateConfigTest, AcceptsTheBaseConfig) { EXPECT_TRUE(ValidateConfig(ValidConfig()).ok()); }

TEST(ValidateConfigTest, RedisRulesApplyOnlyWithARedisSection) {
  AppConfig c = ValidConfig();
  c.redis.lease_ms = 1;  // would be refused with a `redis:` section
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.redis.configured = true;
  EXPECT_FALSE(ValidateConfig(c).ok());
  c.redis.lease_ms = 10'000;
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ValidateConfigTest, AcceptsBoundaryValues) {
  AppConfig c = ValidConfig();
  c.server.port = 0;
  c.server.io_threads = 64;
  c.server.header_limit_bytes = 1024;
  c.server.service_token_sha256.clear();
  c.tiers[0].latency_budget_us = c.tiers[0].total_timeout_us;
  c.models[0].max_batch_size = 4096;
  c.models[0].max_batch_delay_us = 0;
  c.models[0].default_max_tokens = c.models[0].max_tokens_limit;
  c.models[0].backend.sim.devices = 1024;
  c.models[0].backend.sim.fixed_latency_us = 0;
  c.models[0].backend.sim.jitter = 1.0;
  c.keys[0].sha256 = ToHex(Sha256("upper-case"));
  for (char& ch : c.keys[0].sha256) ch = static_cast<char>(std::toupper(ch));
  Status s = ValidateConfig(c);
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(ValidateConfigTest, AcceptsHttpBackends) {
  for (const char* kind : {"http", "openai", "kserve"}) {
    AppConfig c = ValidConfig();
    c.models[0].backend.kind = kind;
    c.models[0].backend.http.endpoints = {"http://127.0.0.1:9000",
                                          "https://gpu-1.internal/v1/batch"};
    c.models[0].backend.http.tls_cert_file = "client.pem";
    c.models[0].backend.http.tls_key_file = "client.key";
    Status s = ValidateConfig(c);
    EXPECT_TRUE(s.ok()) << kind << ": " << s.message();
  }
}

struct RuleCase {
  const char* name;
  std::function<void(AppConfig&)> breaks;
  const char* message_prefix;  // the YAML path and ": "
};

class ValidateRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(ValidateRuleTest, NamesTheField) {
  AppConfig config = ValidConfig();
  GetParam().breaks(config);
  Status status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(status.message(), StartsWith(GetParam().message_prefix));
}

ModelConfig& Model(AppConfig& c) { return c.models[0]; }
SimBackendConfig& Sim(AppConfig& c) { return c.models[0].backend.sim; }
HttpBackendConfig& Http(AppConfig& c) { return c.models[0].backend.http; }

RedisConfig& Redis(AppConfig& c) {
  c.redis.configured = true;
  return c.redis;
}

const RuleCase kRules[] = {
    {"EmptyRedisHost", [](AppConfig& c) { Redis(c).host.clear(); }, "redis.host: "},
    {"ZeroRedisPort", [](AppConfig& c) { Redis(c).port = 0; }, "redis.port: "},
    {"BraceInKeyPrefix", [](AppConfig& c) { Redis(c).key_prefix = "a{b"; }, "redis.key_prefix: "},
    {"ZeroCommandTimeout", [](AppConfig& c) { Redis(c).command_timeout_ms = 0; },
     "redis.command_timeout_ms: "},
    {"LeaseTooShortToRenew", [](AppConfig& c) { Redis(c).lease_ms = 199; }, "redis.lease_ms: "},
    {"LongEnqueueDelay", [](AppConfig& c) { Redis(c).enqueue_max_delay_us = 100'001; },
     "redis.enqueue_max_delay_us: "},
    {"ZeroEnqueueBatch", [](AppConfig& c) { Redis(c).enqueue_max_batch = 0; },
     "redis.enqueue_max_batch: "},
    {"UsernameWithoutPassword", [](AppConfig& c) { Redis(c).username = "gw"; }, "redis.username: "},
    {"ShortHeartbeatTtl", [](AppConfig& c) { Redis(c).heartbeat_ttl_ms = 100; },
     "redis.heartbeat_ttl_ms: "},
    {"BadGatewayId", [](AppConfig& c) { Redis(c).gateway_id = "gw|1"; }, "redis.gateway_id: "},
    {"BadWorkerBlock",
     [](AppConfig& c) {
       Redis(c);
       c.worker.max_block_ms = 0;
     },
     "worker.max_block_ms: "},
    {"NegativeTierRpm", [](AppConfig& c) { c.tiers[0].requests_per_minute = -1; },
     "tiers[0].requests_per_minute: "},
    {"NegativeTierTpm", [](AppConfig& c) { c.tiers[1].tokens_per_minute = -5; },
     "tiers[1].tokens_per_minute: "},
    {"BadTierQueueDepth", [](AppConfig& c) { c.tiers[0].max_queue_depth = -2; },
     "tiers[0].max_queue_depth: "},
    {"BadKeyRpmOverride", [](AppConfig& c) { c.keys[1].requests_per_minute = -2; },
     "keys[1].requests_per_minute: "},
    {"BadKeyTpmOverride", [](AppConfig& c) { c.keys[0].tokens_per_minute = -3; },
     "keys[0].tokens_per_minute: "},
    {"ZeroTargetUtilization", [](AppConfig& c) { c.admission.target_utilization = 0; },
     "admission.target_utilization: "},
    {"TargetUtilizationAboveOne", [](AppConfig& c) { c.admission.target_utilization = 1.5; },
     "admission.target_utilization: "},
    {"EmptyListenAddress", [](AppConfig& c) { c.server.listen_address.clear(); },
     "server.listen_address: "},
    {"ZeroIoThreads", [](AppConfig& c) { c.server.io_threads = 0; },
     "server.io_threads: must be between 1 and 64, got 0"},
    {"TooManyIoThreads", [](AppConfig& c) { c.server.io_threads = 65; }, "server.io_threads: "},
    {"ZeroMaxConnections", [](AppConfig& c) { c.server.max_connections = 0; },
     "server.max_connections: "},
    {"ZeroBodyLimit", [](AppConfig& c) { c.server.body_limit_bytes = 0; },
     "server.body_limit_bytes: "},
    {"SmallHeaderLimit", [](AppConfig& c) { c.server.header_limit_bytes = 1023; },
     "server.header_limit_bytes: "},
    {"ZeroReadTimeout", [](AppConfig& c) { c.server.read_timeout_ms = 0; },
     "server.read_timeout_ms: "},
    {"NegativeIdleTimeout", [](AppConfig& c) { c.server.idle_timeout_ms = -1; },
     "server.idle_timeout_ms: "},
    {"ZeroDrainTimeout", [](AppConfig& c) { c.server.drain_timeout_ms = 0; },
     "server.drain_timeout_ms: "},
    {"ShortServiceToken", [](AppConfig& c) { c.server.service_token_sha256 = "abc"; },
     "server.service_token_sha256: "},
    {"NonHexServiceToken",
     [](AppConfig& c) { c.server.service_token_sha256 = std::string(64, 'g'); },
     "server.service_token_sha256: "},
    {"ZeroRecentRequests", [](AppConfig& c) { c.server.recent_requests = 0; },
     "server.recent_requests: "},
    {"NoTiers",
     [](AppConfig& c) {
       c.tiers.clear();
       c.keys.clear();
     },
     "tiers: at least one tier"},
    {"EmptyTierName", [](AppConfig& c) { c.tiers[1].name.clear(); }, "tiers[1].name: "},
    {"DuplicateTierName", [](AppConfig& c) { c.tiers[1].name = "paid"; },
     "tiers[1].name: duplicate tier name \"paid\""},
    {"ZeroLatencyBudget", [](AppConfig& c) { c.tiers[0].latency_budget_us = 0; },
     "tiers[0].latency_budget_ms: "},
    {"ZeroMaxQueueAge", [](AppConfig& c) { c.tiers[0].max_queue_age_us = 0; },
     "tiers[0].max_queue_age_ms: "},
    {"NegativeTotalTimeout", [](AppConfig& c) { c.tiers[1].total_timeout_us = -1000; },
     "tiers[1].total_timeout_ms: "},
    {"TotalTimeoutBeyondAWeek",
     [](AppConfig& c) { c.tiers[1].total_timeout_us = int64_t{604'800'001} * 1000; },
     "tiers[1].total_timeout_ms: must be at most 604800000 (7 days), got 604800001"},
    {"LatencyBudgetOfDecades",
     [](AppConfig& c) {
       c.tiers[0].latency_budget_us = int64_t{1'000'000'000'000} * 1000;
       c.tiers[0].total_timeout_us = c.tiers[0].latency_budget_us;
     },
     "tiers[0].latency_budget_ms: must be at most 604800000 (7 days), got 1000000000000"},
    {"BudgetBeyondTotalTimeout", [](AppConfig& c) { c.tiers[0].latency_budget_us = 5'000'000; },
     "tiers[0].latency_budget_ms: must not exceed total_timeout_ms (4000), got 5000"},
    {"NoModels", [](AppConfig& c) { c.models.clear(); }, "models: at least one model"},
    {"EmptyModelName", [](AppConfig& c) { Model(c).name.clear(); }, "models[0].name: "},
    {"DuplicateModelName", [](AppConfig& c) { c.models.push_back(c.models[0]); },
     "models[1].name: duplicate model name \"m\""},
    {"ZeroBatchSize", [](AppConfig& c) { Model(c).max_batch_size = 0; },
     "models[0].max_batch_size: must be between 1 and 4096, got 0"},
    {"HugeBatchSize", [](AppConfig& c) { Model(c).max_batch_size = 4097; },
     "models[0].max_batch_size: "},
    {"AsyncFillBeyondTheBatch", [](AppConfig& c) { Model(c).async_fill_max_batch_size = 33; },
     "models[0].async_fill_max_batch_size: must be at most max_batch_size (32), got 33"},
    {"SimEmbeddingsWithoutDimensions", [](AppConfig& c) { Model(c).task = ModelTask::kEmbeddings; },
     "models[0].embedding_dimensions: is required for an embeddings model on the sim backend"},
    {"DimensionsOfACompletionsModel", [](AppConfig& c) { Model(c).embedding_dimensions = 8; },
     "models[0].embedding_dimensions: applies to task embeddings only"},
    {"HugeEmbeddingDimensions",
     [](AppConfig& c) {
       Model(c).task = ModelTask::kEmbeddings;
       Model(c).embedding_dimensions = 65537;
     },
     "models[0].embedding_dimensions: must be between 0 and 65536, got 65537"},
    {"AcceptsDimensionsWithoutALength",
     [](AppConfig& c) {
       Model(c).task = ModelTask::kEmbeddings;
       Model(c).backend.kind = "http";
       Http(c).endpoints = {"http://a"};
       Model(c).accepts_dimensions = true;
     },
     "models[0].accepts_dimensions: needs embedding_dimensions"},
    {"OpenAiEmbeddingsApiOnACompletionsModel",
     [](AppConfig& c) {
       Model(c).backend.kind = "openai";
       Http(c).endpoints = {"http://a"};
       Http(c).openai_api = "embeddings";
     },
     "models[0].task: must be embeddings for an openai backend with openai_api embeddings"},
    {"ChatTemplateWithoutContent", [](AppConfig& c) { Model(c).chat_template.user = "U: "; },
     "models[0].chat_template.user: must contain {content} exactly once"},
    {"NegativeBatchDelay", [](AppConfig& c) { Model(c).max_batch_delay_us = -1; },
     "models[0].max_batch_delay_us: "},
    {"ZeroQueueCapacity", [](AppConfig& c) { Model(c).queue_capacity = 0; },
     "models[0].queue_capacity: "},
    {"ZeroAcceleratorTimeout", [](AppConfig& c) { Model(c).accelerator_timeout_ms = 0; },
     "models[0].accelerator_timeout_ms: "},
    {"ZeroMaxTokensLimit",
     [](AppConfig& c) {
       Model(c).max_tokens_limit = 0;
       Model(c).default_max_tokens = 0;
     },
     "models[0].max_tokens_limit: "},
    {"ZeroDefaultMaxTokens", [](AppConfig& c) { Model(c).default_max_tokens = 0; },
     "models[0].default_max_tokens: "},
    {"DefaultMaxTokensAboveLimit", [](AppConfig& c) { Model(c).default_max_tokens = 4097; },
     "models[0].default_max_tokens: must be between 1 and max_tokens_limit (4096)"},
    {"ZeroCacheTtl", [](AppConfig& c) { Model(c).cache.ttl_ms = 0; },
     "models[0].cache.ttl_ms: must be between 1 and 2592000000 (30 days), got 0"},
    {"CacheTtlOverThirtyDays", [](AppConfig& c) { Model(c).cache.ttl_ms = 2'592'000'001; },
     "models[0].cache.ttl_ms: must be between 1 and 2592000000 (30 days), got 2592000001"},
    {"ZeroCacheMaxBytes", [](AppConfig& c) { Model(c).cache.max_bytes = 0; },
     "models[0].cache.max_bytes: must be at least 1, got 0"},
    {"UnknownBackendKind", [](AppConfig& c) { Model(c).backend.kind = "x"; },
     "models[0].backend.kind: unknown backend \"x\" (supported: sim, http, openai, kserve)"},
    {"HttpWithoutEndpoints", [](AppConfig& c) { Model(c).backend.kind = "http"; },
     "models[0].backend.endpoints: at least one endpoint URL is required"},
    {"HttpEndpointNotAUrl",
     [](AppConfig& c) {
       Model(c).backend.kind = "kserve";
       Http(c).endpoints = {"http://a:1", "ftp://b"};
     },
     "models[0].backend.endpoints[1]: expected an http:// or https:// URL"},
    {"HttpEndpointWithoutHost",
     [](AppConfig& c) {
       Model(c).backend.kind = "http";
       Http(c).endpoints = {"http://:80/x"};
     },
     "models[0].backend.endpoints[0]: "},
    {"HttpZeroConnections",
     [](AppConfig& c) {
       Model(c).backend.kind = "http";
       Http(c).endpoints = {"http://a"};
       Http(c).connections_per_endpoint = 0;
     },
     "models[0].backend.connections_per_endpoint: "},
    {"HttpZeroConnectTimeout",
     [](AppConfig& c) {
       Model(c).backend.kind = "http";
       Http(c).endpoints = {"http://a"};
       Http(c).connect_timeout_ms = 0;
     },
     "models[0].backend.connect_timeout_ms: "},
    {"HttpZeroRequestTimeout",
     [](AppConfig& c) {
       Model(c).backend.kind = "openai";
       Http(c).endpoints = {"http://a"};
       Http(c).request_timeout_ms = -1;
     },
     "models[0].backend.request_timeout_ms: "},
    {"OpenAiUnknownApi",
     [](AppConfig& c) {
       Model(c).backend.kind = "openai";
       Http(c).endpoints = {"http://a"};
       Http(c).openai_api = "rerank";
     },
     "models[0].backend.openai_api: unknown API \"rerank\""},
    {"OpenAiChatBatchesOfMoreThanOne",
     [](AppConfig& c) {
       Model(c).backend.kind = "openai";
       Http(c).endpoints = {"http://a"};
       Http(c).openai_api = "chat";
     },
     "models[0].max_batch_size: must be 1 for an openai backend with openai_api chat (one "
     "conversation per call), got 32"},
    {"ClientCertWithoutKey",
     [](AppConfig& c) {
       Model(c).backend.kind = "http";
       Http(c).endpoints = {"https://a"};
       Http(c).tls_cert_file = "client.pem";
     },
     "models[0].backend.tls_key_file: "},
    {"ZeroDevices", [](AppConfig& c) { Sim(c).devices = 0; }, "models[0].backend.devices: "},
    {"TooManyDevices", [](AppConfig& c) { Sim(c).devices = 1025; }, "models[0].backend.devices: "},
    {"NegativeFixedLatency", [](AppConfig& c) { Sim(c).fixed_latency_us = -1; },
     "models[0].backend.fixed_latency_us: "},
    {"NegativePerItemLatency", [](AppConfig& c) { Sim(c).per_item_latency_us = -1; },
     "models[0].backend.per_item_latency_us: "},
    {"NegativeJitter", [](AppConfig& c) { Sim(c).jitter = -0.1; }, "models[0].backend.jitter: "},
    {"JitterAboveOne", [](AppConfig& c) { Sim(c).jitter = 1.5; }, "models[0].backend.jitter: "},
    {"NanJitter", [](AppConfig& c) { Sim(c).jitter = std::nan(""); }, "models[0].backend.jitter: "},
    {"EmptyKeyId", [](AppConfig& c) { c.keys[1].id.clear(); }, "keys[1].id: "},
    {"DuplicateKeyId", [](AppConfig& c) { c.keys[1].id = "key-a"; },
     "keys[1].id: duplicate key id \"key-a\""},
    {"UnknownKeyTier", [](AppConfig& c) { c.keys[0].tier = "gold"; },
     "keys[0].tier: unknown tier \"gold\" (configured tiers: paid, free)"},
    {"BadKeyHash", [](AppConfig& c) { c.keys[0].sha256 = "sk-free-demo"; }, "keys[0].sha256: "},
    {"DuplicateKeyHashAnyCase",
     [](AppConfig& c) {
       c.keys[1].sha256 = c.keys[0].sha256;
       for (char& ch : c.keys[1].sha256) ch = static_cast<char>(std::toupper(ch));
     },
     "keys[1].sha256: same key hash as keys[0] (\"key-a\")"},
};

INSTANTIATE_TEST_SUITE_P(AllRules, ValidateRuleTest, ::testing::ValuesIn(kRules),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sluice
