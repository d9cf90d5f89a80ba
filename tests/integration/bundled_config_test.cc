// The laptop path: `sluice serve` with the bundled config/sluice.yaml serves
// the bundled model to each demo key, and the service token opens the
// internal endpoints.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

class BundledConfigTest : public SluiceTest {};

TEST_F(BundledConfigTest, ServesTheDemoKeysAndToken) {
  std::ifstream file(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.yaml");
  ASSERT_TRUE(file) << "cannot read config/sluice.yaml";
  std::stringstream yaml;
  yaml << file.rdbuf();
  ASSERT_NO_FATAL_FAILURE(StartSluiceWithYaml(yaml.str()));

  auto client = NewClient();
  for (std::string_view key : {kFreeKey, kPaidKey, kEnterpriseKey}) {
    SCOPED_TRACE(key);
    std::string input = "bundled config, key " + std::string(key);
    Result<Response> r = client->Post("/v1/inference", InferenceBody(kModel, input), {Bearer(key)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(IsCompletion(r->status, r->body, input, kDefaultMaxTokens));
  }
  Result<Response> health = client->Get("/internal/health", {Bearer(kServiceToken)});
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200) << health->body;
  EXPECT_EQ(StringField(health->Json(), "status"), "healthy") << health->body;
}

}  // namespace
}  // namespace sluice::testing
