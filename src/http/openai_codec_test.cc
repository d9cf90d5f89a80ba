#include "http/openai_codec.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace sluice::http {
namespace {

namespace json = boost::json;

TEST(OpenAiCodecTest, EmbeddingsTakeAStringOrAnArrayAndTheirOptions) {
  Result<EmbeddingsCall> one = ParseEmbeddingsCall(R"({"model":"e","input":"hi","user":"u1"})");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->model, "e");
  EXPECT_EQ(one->inputs, std::vector<std::string>{"hi"});
  EXPECT_FALSE(one->base64);
  EXPECT_EQ(one->dimensions, 0);
  Result<EmbeddingsCall> many = ParseEmbeddingsCall(
      R"({"model":"e","input":["a","b","c"],"encoding_format":"base64","dimensions":8})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->inputs, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(many->base64);
  EXPECT_EQ(many->dimensions, 8);
}

TEST(OpenAiCodecTest, EachBadFieldIsNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"input":"x"})", "model: required"},
      {R"({"model":"e"})", "input: required"},
      {R"({"model":"e","input":[]})", "input: must not be an empty array"},
      {R"({"model":"e","input":["a",[1,2]]})",
       "input[1]: must be a string (token arrays are not supported)"},
      {R"({"model":"e","input":"x","encoding_format":"int8"})",
       "encoding_format: must be float or base64"},
      {R"({"model":"e","input":"x","dimensions":0})", "dimensions: must be between 1 and 65536"},
      {"[1]", "the request body must be a JSON object"},
      {"{", "the request body is not valid JSON"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    Result<EmbeddingsCall> r = ParseEmbeddingsCall(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), message);
  }
}

TEST(OpenAiCodecTest, CompletionsReadTheSamplingFields) {
  Result<CompletionsCall> c = ParseCompletionsCall(
      R"({"model":"m","prompt":["p1","p2"],"max_tokens":7,"temperature":0,"top_p":0.5,
          "stop":["\n","END"],"n":1,"stream":true,"stream_options":{"include_usage":true},
          "presence_penalty":0.1,"seed":3})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->prompts, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(c->sampling.max_tokens, 7);
  EXPECT_EQ(c->sampling.temperature, 0.0);
  EXPECT_EQ(c->sampling.top_p, 0.5);
  EXPECT_EQ(c->sampling.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(c->sampling.stream);
  EXPECT_TRUE(c->sampling.include_usage);
  // What the backend is sent besides max_tokens and temperature.
  EXPECT_EQ(c->sampling.params_json, R"({"stop":["\n","END"],"top_p":5E-1})");
  Result<CompletionsCall> plain = ParseCompletionsCall(R"({"model":"m","prompt":"p"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->sampling.max_tokens, 0);
  EXPECT_EQ(plain->sampling.params_json, "");
}

TEST(OpenAiCodecTest, WhatCannotBeHonouredIsRefusedByName) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"model":"m","prompt":"p","n":2})", "n: only 1 is supported"},
      {R"({"model":"m","prompt":"p","best_of":3})", "best_of: only 1 is supported"},
      {R"({"model":"m","prompt":"p","logprobs":2})", "logprobs: not supported"},
      {R"({"model":"m","prompt":"p","echo":true})", "echo: not supported"},
      {R"({"model":"m","prompt":"p","suffix":"s"})", "suffix: not supported"},
      {R"({"model":"m","prompt":"p","max_tokens":0})", "max_tokens: must be between 1 and 1000000"},
      {R"({"model":"m","prompt":"p","max_tokens":1.5})", "max_tokens: must be an integer"},
      {R"({"model":"m","prompt":"p","temperature":3})", "temperature: must be between 0 and 2"},
      {R"({"model":"m","prompt":"p","stop":["a","b","c","d","e"]})",
       "stop: must be a string or up to 4 strings"},
      {R"({"model":"m","prompt":"p","stop":""})", "stop: must not hold an empty string"},
      {R"({"model":"m","prompt":"p","stream_options":{"include_usage":true}})",
       "stream_options: only allowed when stream is true"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    Result<CompletionsCall> r = ParseCompletionsCall(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), message);
  }
}

TEST(OpenAiCodecTest, ChatMessagesTakeTextOrTextParts) {
  Result<ChatCall> c = ParseChatCall(
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
          "max_completion_tokens":9,"max_tokens":3,"tools":[]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->messages.size(), 2u);
  EXPECT_EQ(c->messages[0].role, "system");
  EXPECT_EQ(c->messages[1].content, "ab");
  EXPECT_EQ(c->sampling.max_tokens, 9);  // the newer name wins
  const std::pair<const char*, const char*> cases[] = {
      {R"({"model":"m","messages":[]})", "messages: must be a non-empty array"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
       "messages[0].role: must be system, developer, user or assistant"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content: required"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content[0].type: only text parts are supported"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{}]})",
       "tools: not supported"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    Result<ChatCall> r = ParseChatCall(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), message);
  }
}

TEST(OpenAiCodecTest, ErrorsNameTheirParameter) {
  EXPECT_EQ(ErrorParam("max_tokens: must be at most 4"), "max_tokens");
  EXPECT_EQ(ErrorParam("messages[1].role: must be"), "messages[1].role");
  EXPECT_EQ(ErrorParam("the request body is not valid JSON"), "");
  EXPECT_EQ(ErrorParam("Idempotency-Key: bad"), "");
  EXPECT_EQ(EncodeOpenAiError(400, "n: only 1 is supported", "n", nullptr),
            R"({"error":{"message":"n: only 1 is supported","type":"invalid_request_error",)"
            R"("param":"n","code":null}})");
  EXPECT_EQ(EncodeOpenAiError(429, "slow down", "", "rate_limit_exceeded"),
            R"({"error":{"message":"slow down","type":"rate_limit_error","param":null,)"
            R"("code":"rate_limit_exceeded"}})");
}

TEST(OpenAiCodecTest, EmbeddingsAreShortenedToUnitLengthAndWrittenAsFloatOrBase64) {
  Result<std::vector<float>> whole = ParseEmbedding("[0.6,0.8,0.5]", 0);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, (std::vector<float>{0.6f, 0.8f, 0.5f}));
  Result<std::vector<float>> cut = ParseEmbedding("[3,4,12]", 2);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(*cut, (std::vector<float>{0.6f, 0.8f}));
  EXPECT_EQ(ParseEmbedding("[1,2]", 3).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(ParseEmbedding("\"text\"", 0).status().code(), ErrorCode::kInternal);

  EmbeddingsAnswer a;
  a.model = "e";
  a.vectors = {{0.5f, -0.25f}, {1.0f, 0.0f}};
  a.prompt_tokens = 3;
  EXPECT_EQ(EncodeEmbeddings(a),
            R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.25]},)"
            R"({"object":"embedding","index":1,"embedding":[1,0]}],"model":"e",)"
            R"("usage":{"prompt_tokens":3,"total_tokens":3}})");
  a.base64 = true;
  a.vectors = {{1.0f}};  // 0x3f800000, little-endian
  json::value v = json::parse(EncodeEmbeddings(a));
  EXPECT_EQ(v.at("data").at(0).at("embedding"), "AACAPw==");
}

TEST(OpenAiCodecTest, StopCutsTheTextAtTheFirstStopSequence) {
  bool stopped = false;
  EXPECT_EQ(ApplyStop("one two. three", {"three", "."}, &stopped), "one two");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(ApplyStop("one two", {"x"}, &stopped), "one two");
  EXPECT_FALSE(stopped);
}

CompletionAnswer Answer(bool chat) {
  CompletionAnswer a;
  a.chat = chat;
  a.id = chat ? "chatcmpl-1" : "cmpl-1";
  a.created = 1700000000;
  a.model = "m";
  a.choices = {{"hi there", "length"}};
  a.usage = {3, 2};
  return a;
}

TEST(OpenAiCodecTest, AnAnswerIsOneObject) {
  EXPECT_EQ(EncodeCompletion(Answer(false)),
            R"({"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",)"
            R"("choices":[{"index":0,"text":"hi there","logprobs":null,"finish_reason":"length"}],)"
            R"("usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})");
  json::value chat = json::parse(EncodeCompletion(Answer(true)));
  EXPECT_EQ(chat.at("object"), "chat.completion");
  EXPECT_EQ(chat.at("choices").at(0).at("message"),
            (json::object{{"role", "assistant"}, {"content", "hi there"}}));
}

TEST(OpenAiCodecTest, AStreamedChatIsRoleThenPiecesThenFinishThenUsageThenDone) {
  const std::string events = EncodeCompletionEvents(Answer(true), /*include_usage=*/true);
  std::vector<json::value> chunks;
  size_t at = 0;
  while (at < events.size()) {
    ASSERT_EQ(events.compare(at, 6, "data: "), 0) << events.substr(at);
    const size_t end = events.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    const std::string data = events.substr(at + 6, end - at - 6);
    at = end + 2;
    if (data == "[DONE]") {
      EXPECT_EQ(at, events.size());
      break;
    }
    chunks.push_back(json::parse(data));
  }
  ASSERT_EQ(chunks.size(), 5u);
  for (const json::value& c : chunks) EXPECT_EQ(c.at("object"), "chat.completion.chunk");
  EXPECT_EQ(chunks[0].at("choices").at(0).at("delta"),
            (json::object{{"role", "assistant"}, {"content", ""}}));
  EXPECT_EQ(chunks[1].at("choices").at(0).at("delta").at("content"), "hi");
  EXPECT_EQ(chunks[2].at("choices").at(0).at("delta").at("content"), " there");
  EXPECT_EQ(chunks[3].at("choices").at(0).at("finish_reason"), "length");
  EXPECT_TRUE(chunks[3].at("usage").is_null());
  EXPECT_TRUE(chunks[4].at("choices").as_array().empty());
  EXPECT_EQ(chunks[4].at("usage").at("total_tokens"), 5);
}

TEST(OpenAiCodecTest, AStreamedCompletionCarriesTextAndNoUsageUnlessAsked) {
  const std::string events = EncodeCompletionEvents(Answer(false), /*include_usage=*/false);
  EXPECT_EQ(events.find("usage"), std::string::npos);
  EXPECT_NE(events.find(R"("text":" there")"), std::string::npos);
  EXPECT_TRUE(events.ends_with("data: [DONE]\n\n"));
}

TEST(OpenAiCodecTest, TheModelListNamesEachModel) {
  EXPECT_EQ(
      EncodeModelList({{"a", 5}, {"b", 5}}),
      R"({"object":"list","data":[{"id":"a","object":"model","created":5,"owned_by":"sluice"},)"
      R"({"id":"b","object":"model","created":5,"owned_by":"sluice"}]})");
}

}  // namespace
}  // namespace sluice::http
