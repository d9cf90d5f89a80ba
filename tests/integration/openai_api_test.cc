// The OpenAI-compatible routes over real HTTP, on the bundled config (its
// completions model and its embedding model): answers the simulator's
// deterministic outputs put back in order, chat through the model's
// template, the event-stream framing, and errors and rate limits in
// OpenAI's shapes.
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "backends/sim/sim_model.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace json = boost::json;

constexpr std::string_view kEmbedModel = "sluice-sim-embed";
constexpr int kEmbedDimensions = 256;  // config/sluice.yaml

std::string BundledYaml() {
  std::ifstream file(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.yaml");
  std::stringstream yaml;
  yaml << file.rdbuf();
  return yaml.str();
}

// The float32s of OpenAI's base64 embedding (little-endian).
std::vector<float> DecodeBase64Floats(const std::string& text) {
  std::string bytes(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return {};
  // EVP_DecodeBlock counts the padding's zero bytes too.
  n -= static_cast<int>(std::count(text.end() - std::min<size_t>(text.size(), 2), text.end(), '='));
  std::vector<float> out(static_cast<size_t>(n) / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= uint32_t{static_cast<uint8_t>(bytes[i * 4 + b])} << (8 * b);
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

class OpenAiApiTest : public SluiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartSluiceWithYaml(BundledYaml()));
    client_ = NewClient();
  }

  Response Post(std::string_view path, std::string body,
                const Headers& headers = {Bearer(kPaidKey)}) {
    Result<Response> r = client_->Post(path, std::move(body), headers);
    if (!r.ok()) {
      client_->Close();
      return Response{0, r.status().ToString(), {}};
    }
    return *r;
  }

  std::unique_ptr<HttpClient> client_;
};

TEST_F(OpenAiApiTest, AnArrayOfTextsComesBackInOrderAsTheModelsVectors) {
  const std::vector<std::string> inputs = {"first text", "second", "a third, longer text"};
  Response r = Post("/v1/embeddings", R"({"model":"sluice-sim-embed","input":["first text",)"
                                      R"("second","a third, longer text"],"user":"u-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.Header("Content-Type").starts_with("application/json"));
  EXPECT_TRUE(IsRequestId(r.Header("X-Request-Id"))) << r.Header("X-Request-Id");
  json::value v = r.Json();
  EXPECT_EQ(v.at("object"), "list");
  EXPECT_EQ(v.at("model").as_string(), kEmbedModel);
  const json::array& data = v.at("data").as_array();
  ASSERT_EQ(data.size(), inputs.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(inputs[i]);
    EXPECT_EQ(data[i].at("object"), "embedding");
    EXPECT_EQ(data[i].at("index"), static_cast<int64_t>(i));
    const std::vector<double> want =
        sim::SimulateEmbedding(kEmbedModel, inputs[i], kEmbedDimensions);
    const json::array& got = data[i].at("embedding").as_array();
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_FLOAT_EQ(static_cast<float>(got[k].to_number<double>()), static_cast<float>(want[k]));
    }
    tokens += sim::InputTokens(inputs[i]);
  }
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), tokens);
  EXPECT_EQ(v.at("usage").at("total_tokens"), tokens);
}

TEST_F(OpenAiApiTest, Base64AndDimensionsGiveTheShortenedUnitVector) {
  Response r = Post("/v1/embeddings", R"({"model":"sluice-sim-embed","input":"hello",)"
                                      R"("encoding_format":"base64","dimensions":8})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<float> got =
      DecodeBase64Floats(std::string(r.Json().at("data").at(0).at("embedding").as_string()));
  std::vector<double> full = sim::SimulateEmbedding(kEmbedModel, "hello", kEmbedDimensions);
  double norm = 0;
  for (size_t k = 0; k < 8; ++k) norm += full[k] * full[k];
  ASSERT_EQ(got.size(), 8u);
  for (size_t k = 0; k < 8; ++k)
    EXPECT_FLOAT_EQ(got[k], static_cast<float>(full[k] / std::sqrt(norm)));
}

TEST_F(OpenAiApiTest, CompletionsAnswerEachPromptWithTheModelsText) {
  Response r =
      Post("/v1/completions",
           R"({"model":"sluice-sim-small","prompt":["alpha","beta gamma"],"max_tokens":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = r.Json();
  EXPECT_EQ(v.at("object"), "text_completion");
  EXPECT_TRUE(std::string(v.at("id").as_string()).starts_with("cmpl-"));
  const json::array& choices = v.at("choices").as_array();
  ASSERT_EQ(choices.size(), 2u);
  int64_t completion = 0;
  for (size_t i = 0; i < 2; ++i) {
    const std::string prompt = i == 0 ? "alpha" : "beta gamma";
    sim::SimCompletion want = sim::SimulateCompletion(kModel, prompt, 5);
    EXPECT_EQ(choices[i].at("index"), static_cast<int64_t>(i));
    EXPECT_EQ(choices[i].at("text").as_string(), want.output);
    const int64_t words = want.tokens_used - sim::InputTokens(prompt);
    EXPECT_EQ(choices[i].at("finish_reason"), words == 5 ? "length" : "stop");
    completion += words;
  }
  EXPECT_EQ(v.at("usage").at("prompt_tokens"),
            sim::InputTokens("alpha") + sim::InputTokens("beta gamma"));
  EXPECT_EQ(v.at("usage").at("completion_tokens"), completion);
}

TEST_F(OpenAiApiTest, ChatRendersTheMessagesWithTheModelsTemplate) {
  const std::string prompt = "<|system|>\nbe brief\n<|user|>\nhi there\n<|assistant|>\n";
  sim::SimCompletion want = sim::SimulateCompletion(kModel, prompt, 6);
  Response r =
      Post("/v1/chat/completions",
           R"({"model":"sluice-sim-small","max_tokens":6,"messages":[)"
           R"({"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = r.Json();
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_EQ(v.at("choices").at(0).at("message"),
            (json::object{{"role", "assistant"}, {"content", want.output}}));
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), sim::InputTokens(prompt));

  // Streamed: the same text in pieces, then the finish, the usage, [DONE].
  Response s =
      Post("/v1/chat/completions",
           R"({"model":"sluice-sim-small","max_tokens":6,"stream":true,)"
           R"("stream_options":{"include_usage":true},"messages":[)"
           R"({"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]})");
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.Header("Content-Type"), "text/event-stream");
  EXPECT_EQ(s.Header("Cache-Control"), "no-cache");
  ASSERT_TRUE(s.body.ends_with("\n\ndata: [DONE]\n\n")) << s.body;
  std::string text;
  std::string finish;
  int64_t total_tokens = -1;
  std::istringstream lines(s.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line == "data: [DONE]") continue;
    ASSERT_TRUE(line.starts_with("data: ")) << line;
    json::value chunk = json::parse(line.substr(6));
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    if (!chunk.at("usage").is_null())
      total_tokens = chunk.at("usage").at("total_tokens").as_int64();
    for (const json::value& c : chunk.at("choices").as_array()) {
      if (const json::value* content = c.at("delta").as_object().if_contains("content")) {
        text += content->as_string();
      }
      if (!c.at("finish_reason").is_null()) finish = c.at("finish_reason").as_string();
    }
  }
  EXPECT_EQ(text, want.output);
  EXPECT_FALSE(finish.empty());
  EXPECT_EQ(total_tokens, want.tokens_used);
}

TEST_F(OpenAiApiTest, ErrorsHaveOpenAisShapeAndNameTheParameter) {
  Response no_key = Post("/v1/embeddings", R"({"model":"sluice-sim-embed","input":"x"})", {});
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.body,
            R"x({"error":{"message":"missing Authorization header (expected 'Bearer <api key>')",)x"
            R"("type":"authentication_error","param":null,"code":"invalid_api_key"}})");
  client_ = NewClient();  // a 401 at the header closes the connection

  Response n2 = Post("/v1/completions", R"({"model":"sluice-sim-small","prompt":"x","n":2})");
  EXPECT_EQ(n2.status, 400);
  EXPECT_EQ(n2.body, R"({"error":{"message":"n: only 1 is supported",)"
                     R"("type":"invalid_request_error","param":"n","code":null}})");
  EXPECT_TRUE(IsRequestId(n2.Header("X-Request-Id")));

  Response unknown = Post("/v1/chat/completions",
                          R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, R"({"error":{"message":"model: 'gpt-4o' is not served here",)"
                          R"("type":"not_found_error","param":"model","code":"model_not_found"}})");

  Response wrong_task = Post("/v1/embeddings", R"({"model":"sluice-sim-small","input":"x"})");
  EXPECT_EQ(wrong_task.status, 400);
  EXPECT_EQ(wrong_task.body,
            R"({"error":{"message":"model: 'sluice-sim-small' does not serve embeddings",)"
            R"("type":"invalid_request_error","param":"model","code":null}})");

  Response too_many =
      Post("/v1/completions", R"({"model":"sluice-sim-small","prompt":"x","max_tokens":5000})");
  EXPECT_EQ(too_many.status, 400);
  EXPECT_EQ(
      too_many.body,
      R"({"error":{"message":"max_tokens: must be at most 4096 for model 'sluice-sim-small'",)"
      R"("type":"invalid_request_error","param":"max_tokens","code":null}})");

  Response dims =
      Post("/v1/embeddings", R"({"model":"sluice-sim-embed","input":"x","dimensions":257})");
  EXPECT_EQ(dims.status, 400);
  EXPECT_EQ(dims.body,
            R"({"error":{"message":"dimensions: must be at most 256 for model 'sluice-sim-embed'",)"
            R"("type":"invalid_request_error","param":"dimensions","code":null}})");

  Result<Response> get = client_->Get("/v1/embeddings", {Bearer(kPaidKey)});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->Header("Allow"), "POST");
  EXPECT_EQ(get->body, R"({"error":{"message":"GET is not allowed here; use POST",)"
                       R"("type":"invalid_request_error","param":null,"code":null}})");
}

TEST_F(OpenAiApiTest, TheModelListIsTheConfigsModels) {
  client_ = NewClient();
  Result<Response> r = client_->Get("/v1/models", {Bearer(kFreeKey)});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json::value v = r->Json();
  const json::array& data = v.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0].at("id").as_string(), kModel);
  EXPECT_EQ(data[1].at("id").as_string(), kEmbedModel);
  EXPECT_EQ(data[1].at("object"), "model");
  EXPECT_EQ(data[1].at("owned_by"), "sluice");
}

// A key allowed one request a minute.
class OpenAiRateLimitTest : public SluiceTest {};

TEST_F(OpenAiRateLimitTest, A429CarriesOpenAisHeadersAndRetryAfter) {
  TestConfig config;
  config.extra_keys.push_back({"one-a-minute", "paid", "sk-one-a-minute", 1, 100'000});
  ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  auto client = NewClient();
  const std::string body = R"({"model":"sluice-sim-small","prompt":"x","max_tokens":4})";
  Result<Response> first = client->Post("/v1/completions", body, {Bearer("sk-one-a-minute")});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->Header("x-ratelimit-limit-requests"), "1");
  EXPECT_EQ(first->Header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(first->Header("x-ratelimit-limit-tokens"), "100000");
  EXPECT_TRUE(first->Header("x-ratelimit-reset-requests").ends_with("s"));

  Result<Response> second = client->Post("/v1/completions", body, {Bearer("sk-one-a-minute")});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 429);
  json::value v = second->Json();
  EXPECT_EQ(v.at("error").at("type"), "rate_limit_error");
  EXPECT_EQ(v.at("error").at("code"), "rate_limit_exceeded");
  EXPECT_TRUE(v.at("error").at("param").is_null());
  EXPECT_EQ(second->Header("x-ratelimit-remaining-requests"), "0");
  const std::string retry_after = second->Header("Retry-After");
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_LE(std::stoi(retry_after), 60);
}

}  // namespace
}  // namespace sluice::testing
