// The model server's side of the wire formats: parsing each API's request
// (and rejecting bad ones with the field named) and writing each reply in the
// shape the adapters in backends/http expect.

#include "modelserver/model_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sluice::modelserver {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

std::string ParseError(Api api, std::string_view body) {
  Result<ApiRequest> r = ParseApiRequest(api, body, "m");
  EXPECT_FALSE(r.ok()) << body;
  return r.status().message();
}

TEST(ModelApiTest, ParsesTheGenericBatch) {
  auto r = ParseApiRequest(
      Api::kBatch, R"({"model":"m","inputs":["a","b"],"parameters":[{},{"max_tokens":3}]})", "");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->items.size(), 2u);
  EXPECT_EQ(r->items[0].input, "a");
  EXPECT_EQ(r->items[0].max_tokens, 16);
  EXPECT_EQ(r->items[1].max_tokens, 3);
  EXPECT_THAT(ParseError(Api::kBatch, R"({"model":"m","inputs":["a"],"parameters":[]})"),
              HasSubstr("parameters: expected an array with one object per input"));
  EXPECT_THAT(ParseError(Api::kBatch, R"({"model":"m","inputs":[1]})"), HasSubstr("inputs[0]"));
  EXPECT_THAT(ParseError(Api::kBatch, R"({"inputs":["a"]})"), HasSubstr("model"));
  EXPECT_THAT(ParseError(Api::kBatch, R"({"model":"m","inputs":[]})"), HasSubstr("empty"));
  EXPECT_THAT(ParseError(Api::kBatch, "{"), HasSubstr("invalid JSON"));
  EXPECT_THAT(
      ParseError(Api::kBatch, R"({"model":"m","inputs":["a"],"parameters":[{"max_tokens":0}]})"),
      HasSubstr("parameters[0].max_tokens"));
}

TEST(ModelApiTest, ParsesOpenAiAndKServe) {
  auto c =
      ParseApiRequest(Api::kCompletions, R"({"model":"m","prompt":["x","y"],"max_tokens":4})", "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->items[1].max_tokens, 4);
  auto e = ParseApiRequest(Api::kEmbeddings, R"({"model":"m","input":"solo"})", "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->items.size(), 1u);
  auto k = ParseApiRequest(Api::kKServe, R"({"inputs":[
      {"name":"text_input","shape":[2,1],"datatype":"BYTES","data":["p",["q"]]},
      {"name":"max_tokens","shape":[2,1],"datatype":"INT32","data":[2,5]}]})",
                           "km");
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->model, "km");
  EXPECT_EQ(k->items[1].input, "q");
  EXPECT_EQ(k->items[1].max_tokens, 5);
  EXPECT_THAT(
      ParseError(Api::kKServe, R"({"inputs":[{"name":"text_input","shape":[3,1],"data":["p"]}]})"),
      HasSubstr("shape must be [1, 1]"));
  EXPECT_THAT(ParseError(Api::kKServe, R"({"inputs":[{"name":"x","shape":"bad","data":[]}]})"),
              HasSubstr("shape"));
  EXPECT_THAT(ParseError(Api::kCompletions, R"({"model":"m","prompt":[1]})"),
              HasSubstr("prompt[0]"));
}

TEST(ModelApiTest, WritesEachReplyShape) {
  ApiRequest req{Api::kBatch, "m", {{"a"}, {"b"}}};
  std::vector<ItemReply> items(2);
  items[0].output = "out";
  items[0].tokens_used = 3;
  items[1].error = "bad";
  json::value v = json::parse(EncodeApiReply(req, items, "v1"));
  EXPECT_EQ(v, json::parse(R"({"outputs":[{"output":"out","tokens_used":3},{"error":"bad"}],
                               "model_version":"v1"})"));
  req.api = Api::kCompletions;
  v = json::parse(EncodeApiReply(req, items, "v1"));
  EXPECT_EQ(v.at("choices").at(0).at("text"), "out");
  EXPECT_EQ(v.at("choices").at(1).at("index"), 1);
  req.api = Api::kKServe;
  v = json::parse(EncodeApiReply(req, items, "v1"));
  EXPECT_EQ(v.at("outputs").at(0).at("shape"), (json::array{2, 1}));
  EXPECT_EQ(v.at("outputs").at(0).at("data").at(0), "out");
  req.api = Api::kEmbeddings;
  items[0].embedding = {0.5};
  v = json::parse(EncodeApiReply(req, items, "v1"));
  EXPECT_EQ(v.at("data").at(0).at("embedding"), (json::array{0.5}));
}

TEST(ModelApiTest, ChatTakesOneConversationAndStreamsWordByWord) {
  Result<ApiRequest> r = ParseApiRequest(
      Api::kChat,
      R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],)"
      R"("max_tokens":3,"stream":true,"stream_options":{"include_usage":true}})",
      "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].input, "system: s\nuser: hi\n");
  EXPECT_EQ(r->items[0].max_tokens, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  std::vector<std::string> events = ChatStreamEvents(*r, "[t] a b", 7);
  // role, "[t]", " a", " b", finish, usage, [DONE]
  ASSERT_EQ(events.size(), 7u);
  EXPECT_NE(events[0].find(R"("delta":{"role":"assistant","content":""})"), std::string::npos);
  EXPECT_NE(events[2].find(R"("delta":{"content":" a"})"), std::string::npos);
  EXPECT_NE(events[4].find(R"("finish_reason":"stop")"), std::string::npos);
  EXPECT_NE(events[5].find(R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7})"),
            std::string::npos)
      << events[5];
  EXPECT_EQ(events[6], "[DONE]");
  EXPECT_FALSE(ParseApiRequest(Api::kChat, R"({"model":"m","messages":[]})", "").ok());
}

}  // namespace
}  // namespace sluice::modelserver
