#include "config/config_diff.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using Fields = std::vector<std::string>;

TEST(ConfigDiffTest, NamesTheFieldsThatChanged) {
  const std::string before = R"(
server:
  port: 8080   # a comment does not count
  io_threads: 2
tiers:
  - name: paid
    requests_per_minute: 60
  - name: free
    requests_per_minute: 10
keys:
  - {id: a, tier: paid, sha256: x}
)";
  const std::string after = R"(
server: {port: 8080, io_threads: 4}
tiers:
  - name: paid
    requests_per_minute: 60
  - name: free
    requests_per_minute: 20
keys:
  - {id: a, tier: paid, sha256: x}
  - {id: b, tier: free, sha256: y}
redis: {host: 127.0.0.1}
)";
  auto changed = ChangedConfigFields(before, after);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(*changed,
            (Fields{"keys", "redis", "server.io_threads", "tiers[1].requests_per_minute"}));
  EXPECT_EQ(ChangedConfigFields(before, before).value(), Fields{});
}

TEST(ConfigDiffTest, ListElementsAreComparedFieldByField) {
  auto changed = ChangedConfigFields("keys:\n  - {id: a, sha256: x}\n",
                                     "keys:\n  - {id: a, sha256: z, tier: free}\n");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, (Fields{"keys[0].sha256", "keys[0].tier"}));
}

TEST(ConfigDiffTest, NestedFieldsAreNamedThreeMappingsDeep) {
  const std::string before = R"(
models:
  - name: m
    backend: {kind: http, endpoints: [a, b], request_timeout_ms: 100}
    retry: {max_retries: 2}
)";
  const std::string after = R"(
models:
  - name: m
    backend: {kind: http, endpoints: [a, c], request_timeout_ms: 200}
    retry: {max_retries: 3}
)";
  EXPECT_EQ(ChangedConfigFields(before, after).value(),
            (Fields{"models[0].backend.endpoints[1]", "models[0].backend.request_timeout_ms",
                    "models[0].retry.max_retries"}));
  std::string longer = before;  // a third endpoint
  longer.replace(longer.find("[a, b]"), 6, "[a, b, c]");
  EXPECT_EQ(ChangedConfigFields(before, longer).value(), (Fields{"models[0].backend.endpoints"}));
}

TEST(ConfigDiffTest, TextThatIsNotYamlIsAnError) {
  EXPECT_FALSE(ChangedConfigFields("a: [", "a: 1").ok());
}

}  // namespace
}  // namespace sluice
