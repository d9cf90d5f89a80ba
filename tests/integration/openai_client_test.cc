// The official `openai` npm client (tests/openai_client, pinned in its
// package-lock.json and installed by scripts/setup) against the real
// binary on the bundled config plus a model whose backend streams chat (a
// `sluice model-server`): embeddings, completions, chat plain and streamed
// (from the chat backend, the first chunk before the model server is done),
// and its authentication, bad-request, not-found and rate-limit errors,
// including its own retry after a 429 (client_test.mjs).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "backends/sim/sim_model.h"
#include "common/crypto.h"
#include "modelserver/model_server_process.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

const std::string kClientDir = std::string(SLUICE_SOURCE_DIR) + "/tests/openai_client";
constexpr std::string_view kLimitedKey = "sk-limited-demo-0001";

class OpenAiClientTest : public SluiceTest {};

TEST_F(OpenAiClientTest, TheOfficialClientWorksAgainstSluice) {
  ASSERT_TRUE(std::filesystem::exists(kClientDir + "/node_modules/openai/package.json"))
      << "the openai npm package is not installed: run scripts/setup (it runs npm ci in "
      << kClientDir << ")";
  modelserver::testing::ModelServerProcess chat_server(
      SLUICE_BINARY, {"--model", "chat-sim", "--fixed-latency-us", "5000", "--per-item-latency-us",
                      "0", "--stream-tokens-per-second", "20"});
  Status started = chat_server.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  std::ifstream file(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.yaml");
  std::stringstream bundled;
  bundled << file.rdbuf();
  std::string yaml = bundled.str();
  // A model whose backend streams chat, after the bundled ones.
  const size_t keys = yaml.find("\nkeys:");
  ASSERT_NE(keys, std::string::npos);
  yaml.insert(keys + 1,
              "  - name: sluice-chat\n    max_batch_size: 1\n    backend:\n"
              "      kind: openai\n      openai_api: chat\n      endpoints: [\"" +
                  chat_server.url() +
                  "\"]\n      remote_model: chat-sim\n"
                  "      connections_per_endpoint: 2\n\n");
  // `keys:` ends the bundled file: one more key, 20 requests a minute.
  yaml += "  - id: limited\n    tier: paid\n    sha256: " + ToHex(Sha256(kLimitedKey)) +
          "\n    requests_per_minute: 20\n";
  ASSERT_NO_FATAL_FAILURE(StartSluiceWithYaml(yaml));

  const std::string chat_prompt = "<|system|>\nbe brief\n<|user|>\nhi there\n<|assistant|>\n";
  const std::pair<const char*, std::string> env[] = {
      {"SLUICE_BASE_URL", "http://127.0.0.1:" + std::to_string(port()) + "/v1"},
      {"SLUICE_KEY", std::string(kEnterpriseKey)},
      {"SLUICE_LIMITED_KEY", std::string(kLimitedKey)},
      {"EXPECT_COMPLETION", sim::SimulateCompletion(kModel, "hello", 5).output},
      {"EXPECT_CHAT", sim::SimulateCompletion(kModel, chat_prompt, 6).output},
      {"MODEL_SERVER_URL", chat_server.url()},
      // The model server's input is "role: content" lines.
      {"EXPECT_STREAMED_CHAT", sim::SimulateCompletion("chat-sim", "user: hi there\n", 40).output},
  };
  for (const auto& [name, value] : env) ASSERT_EQ(setenv(name, value.c_str(), 1), 0);
  auto [status, output] =
      RunShell("cd '" + kClientDir + "' && timeout 120 node client_test.mjs 2>&1");
  for (const auto& [name, value] : env) unsetenv(name);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("all checks passed"), std::string::npos) << output;
  for (const char* check :
       {"ok embeddingsOfAnArray", "ok completion", "ok chat", "ok chatStreamed",
        "ok chatStreamedFromAChatBackend", "ok unknownKeyIsAnAuthenticationError",
        "ok badParameterIsABadRequestNamingIt",
        "ok rateLimitIsARateLimitErrorAndRetryHonoursRetryAfter"}) {
    EXPECT_NE(output.find(check), std::string::npos) << check << "\n" << output;
  }
}

TEST_F(OpenAiClientTest, PlainCurlSeesTheEventStreamFraming) {
  ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{}));
  const std::string body =
      R"({"model":"sluice-sim-small","prompt":"frame me","max_tokens":3,"stream":true})";
  auto [status, out] =
      RunShell("curl -sN --max-time 30 -H 'Authorization: Bearer " + std::string(kPaidKey) +
               "' -H 'Content-Type: application/json' -d '" + body +
               "' http://127.0.0.1:" + std::to_string(port()) + "/v1/completions");
  ASSERT_EQ(status, 0) << out;
  // Events: "data: <one JSON object>", a blank line after each, [DONE] last.
  std::string text;
  size_t at = 0;
  int events = 0;
  bool done = false;
  while (at < out.size()) {
    ASSERT_FALSE(done) << "an event after [DONE]:\n" << out;
    ASSERT_EQ(out.compare(at, 6, "data: "), 0) << out.substr(at);
    const size_t end = out.find("\n\n", at);
    ASSERT_NE(end, std::string::npos) << out;
    const std::string data = out.substr(at + 6, end - at - 6);
    ASSERT_EQ(data.find('\n'), std::string::npos) << data;
    at = end + 2;
    ++events;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    boost::json::value chunk = boost::json::parse(data);
    text += chunk.at("choices").at(0).at("text").as_string();
  }
  EXPECT_TRUE(done) << out;
  EXPECT_GE(events, 3);
  EXPECT_EQ(text, sim::SimulateCompletion(kModel, "frame me", 3).output);
}

}  // namespace
}  // namespace sluice::testing
