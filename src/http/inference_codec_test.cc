#include "http/inference_codec.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace sluice::http {
namespace {

namespace json = boost::json;

Status Decode(std::string_view body, DecodedInference* out = nullptr) {
  DecodedInference scratch;
  return DecodeInferenceRequest(body, out ? out : &scratch);
}

TEST(InferenceCodecTest, DecodesTheSeedRequest) {
  DecodedInference d;
  ASSERT_TRUE(Decode(R"({"model":"claude-3","input":"What is the capital of France?",
                         "parameters":{"temperature":0.7,"max_tokens":100,"top_p":0.9}})",
                     &d)
                  .ok());
  EXPECT_EQ(d.model, "claude-3");
  EXPECT_EQ(d.input, "What is the capital of France?");
  EXPECT_EQ(d.params.max_tokens, 100);
  EXPECT_DOUBLE_EQ(*d.params.temperature, 0.7);
  EXPECT_NE(d.params.json.find("top_p"), std::string::npos);  // forwarded
  EXPECT_NE(d.params.json.find("max_tokens"), std::string::npos);
}

TEST(InferenceCodecTest, ParametersAreOptional) {
  DecodedInference d;
  ASSERT_TRUE(Decode(R"({"model":"m","input":"x"})", &d).ok());
  EXPECT_EQ(d.params.max_tokens, 0);  // model default applies later
  EXPECT_FALSE(d.params.temperature.has_value());
}

TEST(InferenceCodecTest, ErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"input":"x"})", "model"},
      {R"({"model":7,"input":"x"})", "model"},
      {R"({"model":"","input":"x"})", "model"},
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":["x"]})", "input"},
      {R"({"model":"m","input":"x","parameters":[1]})", "parameters"},
      {R"({"model":"m","input":"x","parameters":{"max_tokens":"ten"}})", "parameters.max_tokens"},
      {R"({"model":"m","input":"x","parameters":{"max_tokens":1.5}})", "parameters.max_tokens"},
      {R"({"model":"m","input":"x","parameters":{"max_tokens":0}})", "parameters.max_tokens"},
      {R"({"model":"m","input":"x","parameters":{"temperature":"hot"}})", "parameters.temperature"},
      {R"({"model":"m","input":"x","parameters":{"temperature":9}})", "parameters.temperature"},
  };
  for (const auto& c : cases) {
    Status s = Decode(c.body);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.body;
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << c.body << " -> " << s.message();
  }
}

TEST(InferenceCodecTest, MalformedJsonIsInvalid) {
  EXPECT_EQ(Decode("{\"model\":").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Decode("[]").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Decode("").code(), ErrorCode::kInvalidArgument);
}

TEST(InferenceCodecTest, LargeBodiesDecode) {
  std::string input(100'000, 'a');
  DecodedInference d;
  ASSERT_TRUE(Decode(R"({"model":"m","input":")" + input + R"("})", &d).ok());
  EXPECT_EQ(d.input.size(), input.size());
}

TEST(InferenceCodecTest, EncodesTheSeedResponseFieldNames) {
  InferenceOutcome o;
  o.output = "Paris \"quoted\"";
  o.tokens_used = 15;
  o.model_version = "claude-3-2024";
  json::value v = json::parse(EncodeInferenceResponse("req_abc", o, 127));
  EXPECT_EQ(v.at("request_id").as_string(), "req_abc");
  EXPECT_EQ(v.at("output").as_string(), "Paris \"quoted\"");
  EXPECT_EQ(v.at("metadata").at("tokens_used").to_number<int>(), 15);
  EXPECT_EQ(v.at("metadata").at("latency_ms").to_number<int>(), 127);
  EXPECT_EQ(v.at("metadata").at("model_version").as_string(), "claude-3-2024");
}

TEST(InferenceCodecTest, ResponseEscapingRoundTripsEveryByte) {
  InferenceOutcome o;
  for (int c = 1; c < 128; ++c) o.output.push_back(static_cast<char>(c));
  o.output += "caf\xc3\xa9 \xe2\x82\xac";  // UTF-8 passes through
  o.model_version = "v\"1\\";
  json::value v = json::parse(EncodeInferenceResponse("req_\n", o, 0));
  EXPECT_EQ(v.at("output").as_string(), o.output);
  EXPECT_EQ(v.at("metadata").at("model_version").as_string(), o.model_version);
  EXPECT_EQ(v.at("request_id").as_string(), "req_\n");
}

TEST(InferenceCodecTest, OnlyUnknownParametersAreKeptAsJson) {
  DecodedInference d;
  ASSERT_TRUE(Decode(R"({"model":"m","input":"x","parameters":{"max_tokens":5}})", &d).ok());
  EXPECT_TRUE(d.params.json.empty());
  ASSERT_TRUE(Decode(R"({"model":"m","input":"x","parameters":{"stop":["\n"]}})", &d).ok());
  EXPECT_EQ(json::parse(d.params.json).at("stop").at(0).as_string(), "\n");
}

TEST(InferenceCodecTest, ParametersAreKeptWithTheirMembersInKeyOrder) {
  DecodedInference a, b;
  ASSERT_TRUE(Decode(R"({"model":"m","input":"x",
                         "parameters":{"top_p":0.5,"stop":["\n","."],"x":{"b":1,"a":[{"d":2,"c":3}]}}})",
                     &a)
                  .ok());
  ASSERT_TRUE(Decode(R"({"model":"m","input":"x",
                         "parameters":{"x":{"a":[{"c":3,"d":2}],"b":1},"stop":["\n","."],"top_p":0.5}})",
                     &b)
                  .ok());
  EXPECT_EQ(a.params.json, R"({"stop":["\n","."],"top_p":5E-1,"x":{"a":[{"c":3,"d":2}],"b":1}})");
  EXPECT_EQ(a.params.json, b.params.json);
}

TEST(InferenceCodecTest, OnlyACachedOrCollapsedAnswerSaysSo) {
  InferenceOutcome o;
  o.output = "out";
  json::object plain =
      json::parse(EncodeInferenceResponse("req_1", o, 3)).at("metadata").as_object();
  EXPECT_FALSE(plain.contains("cached"));
  EXPECT_FALSE(plain.contains("collapsed"));
  o.cached = true;
  EXPECT_TRUE(
      json::parse(EncodeInferenceResponse("req_1", o, 3)).at("metadata").at("cached").as_bool());
  o.cached = false;
  o.collapsed = true;
  json::object shared =
      json::parse(EncodeInferenceResponse("req_1", o, 3)).at("metadata").as_object();
  EXPECT_TRUE(shared.at("collapsed").as_bool());
  EXPECT_FALSE(shared.contains("cached"));
}

TEST(InferenceCodecTest, EncodesErrors) {
  json::value v = json::parse(EncodeError(Unavailable("queue full"), "req_1"));
  EXPECT_EQ(v.at("error").at("code").as_string(), "unavailable");
  EXPECT_EQ(v.at("error").at("message").as_string(), "queue full");
  EXPECT_EQ(v.at("error").at("request_id").as_string(), "req_1");
  v = json::parse(EncodeError(InvalidArgument("x"), ""));
  EXPECT_TRUE(v.at("error").at("request_id").is_null());
}

}  // namespace
}  // namespace sluice::http
