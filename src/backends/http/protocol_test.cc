// Encode/decode of the three batch protocols: what goes on the wire, and that
// every kind of bad reply becomes a clear batch error (never a crash or a
// mis-routed result), while per-item errors fail only their items.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "backends/http/batch_protocol.h"

namespace sluice::http_backend {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

std::vector<RequestPtr> Batch(std::initializer_list<const char*> inputs, int max_tokens = 8) {
  std::vector<RequestPtr> batch;
  for (const char* in : inputs) {
    auto r = std::make_shared<InferenceRequest>();
    r->input = in;
    r->params.max_tokens = max_tokens;
    batch.push_back(r);
  }
  return batch;
}

std::unique_ptr<BatchProtocol> Make(ProtocolKind kind, std::string base_path = "") {
  ProtocolOptions o;
  o.kind = kind;
  o.model = "m1";
  o.base_path = std::move(base_path);
  auto p = MakeBatchProtocol(o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(p.value());
}

void ExpectBatchError(const BatchResult& r, const std::string& fragment) {
  EXPECT_EQ(r.status.code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.status.message(), HasSubstr(fragment));
  EXPECT_TRUE(r.items.empty());
}

TEST(ProtocolKindTest, FromConfigNames) {
  EXPECT_EQ(ProtocolKindFor("http", "").value(), ProtocolKind::kGeneric);
  EXPECT_EQ(ProtocolKindFor("openai", "").value(), ProtocolKind::kOpenAiCompletions);
  EXPECT_EQ(ProtocolKindFor("openai", "embeddings").value(), ProtocolKind::kOpenAiEmbeddings);
  EXPECT_EQ(ProtocolKindFor("kserve", "").value(), ProtocolKind::kKServe);
  EXPECT_FALSE(ProtocolKindFor("grpc", "").ok());
  EXPECT_FALSE(ProtocolKindFor("openai", "chat").ok());
  EXPECT_FALSE(MakeBatchProtocol(ProtocolOptions{}).ok());  // no model name
}

TEST(GenericProtocolTest, EncodesInputsAndPerItemParameters) {
  auto batch = Batch({"a \"quoted\"", "b"});
  batch[1]->params.max_tokens = 3;
  batch[1]->params.temperature = 0.5;
  batch[1]->params.json = R"({"top_p":0.9,"max_tokens":3})";
  EncodedBatch e = Make(ProtocolKind::kGeneric)->Encode(batch);
  EXPECT_EQ(e.target, "/v1/batch");
  json::value v = json::parse(e.body);
  EXPECT_EQ(v.at("model"), "m1");
  EXPECT_EQ(v.at("inputs"), (json::array{"a \"quoted\"", "b"}));
  EXPECT_EQ(v.at("parameters").at(0), (json::object{{"max_tokens", 8}}));
  EXPECT_EQ(v.at("parameters").at(1).at("top_p"), 0.9);
  EXPECT_EQ(v.at("parameters").at(1).at("max_tokens"), 3);
  EXPECT_EQ(v.at("parameters").at(1).at("temperature"), 0.5);
  EXPECT_EQ(Make(ProtocolKind::kGeneric, "/api/infer")->Encode(batch).target, "/api/infer");
}

TEST(GenericProtocolTest, DecodesOutputsAndPerItemErrors) {
  auto batch = Batch({"a", "b", "c"});
  BatchResult r = Make(ProtocolKind::kGeneric)
                      ->Decode(200,
                               R"({"outputs":[{"output":"x","tokens_used":7},{"error":"boom"},
                                   {"output":"z"}],"model_version":"v9"})",
                               batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_EQ(r.model_version, "v9");
  EXPECT_TRUE(r.items[0].status.ok());
  EXPECT_EQ(r.items[0].output, "x");
  EXPECT_EQ(r.items[0].tokens_used, 7u);
  EXPECT_EQ(r.items[1].status.code(), ErrorCode::kBackendError);
  EXPECT_THAT(r.items[1].status.message(), HasSubstr("boom"));
  EXPECT_EQ(r.items[2].output, "z");
  EXPECT_EQ(r.items[2].tokens_used, 2u);  // estimate: 1 input + 1 output
}

TEST(GenericProtocolTest, BadRepliesAreBatchErrors) {
  auto p = Make(ProtocolKind::kGeneric);
  auto batch = Batch({"a", "b"});
  ExpectBatchError(p->Decode(500, R"({"error":"overloaded"})", batch), "HTTP 500: overloaded");
  ExpectBatchError(p->Decode(200, "not json", batch), "invalid JSON");
  ExpectBatchError(p->Decode(200, "[1]", batch), "expected a JSON object");
  ExpectBatchError(p->Decode(200, R"({"outputs":{}})", batch), "\"outputs\" must be an array");
  ExpectBatchError(p->Decode(200, R"({"outputs":[{"output":"x"}]})", batch),
                   "expected 2 outputs, got 1");
  ExpectBatchError(p->Decode(200, R"({"outputs":[{"output":"x"},{"output":1}]})", batch),
                   "outputs[1].output must be a string");
  ExpectBatchError(p->Decode(200, R"({"outputs":[{"output":"x","tokens_used":-1},{}]})", batch),
                   "outputs[0].tokens_used");
  ExpectBatchError(p->Decode(200, R"({"outputs":[3,{"output":"x"}]})", batch),
                   "outputs[0] must be an object");
}

TEST(OpenAiProtocolTest, CompletionsEncodeOnePromptArray) {
  auto batch = Batch({"p0", "p1"}, 4);
  EncodedBatch e = Make(ProtocolKind::kOpenAiCompletions, "/base")->Encode(batch);
  EXPECT_EQ(e.target, "/base/v1/completions");
  json::value v = json::parse(e.body);
  EXPECT_EQ(v.at("prompt"), (json::array{"p0", "p1"}));
  EXPECT_EQ(v.at("max_tokens"), 4);
  EXPECT_EQ(v.as_object().if_contains("temperature"), nullptr);
}

using Groups = std::vector<std::vector<size_t>>;

TEST(OpenAiProtocolTest, CompletionsGroupItemsByTheirWholeParameters) {
  auto p = Make(ProtocolKind::kOpenAiCompletions);
  auto same = Batch({"a", "b", "c"}, 16);
  EXPECT_EQ(p->Groups(same), (Groups{{0, 1, 2}}));  // one group: one call

  auto batch = Batch({"a", "b", "c", "d", "e", "f"}, 16);
  batch[1]->params.max_tokens = 4096;
  batch[2]->params.temperature = 0.2;
  batch[3]->params.temperature = 0.9;
  batch[4]->params.temperature = 0.2;
  batch[5]->params.max_tokens = 4096;
  EXPECT_EQ(p->Groups(batch), (Groups{{0}, {1, 5}, {2, 4}, {3}}));

  // Extra parameters count too, whatever their key order.
  auto extra = Batch({"a", "b", "c", "d"}, 16);
  extra[0]->params.json = R"({"top_p":0.5,"stop":["\n"]})";
  extra[1]->params.json = R"({"stop":["\n"],"top_p":0.5})";
  extra[2]->params.json = R"({"top_p":0.9,"stop":["\n"]})";
  EXPECT_EQ(p->Groups(extra), (Groups{{0, 1}, {2}, {3}}));

  // Embeddings take no generation parameters: always one call.
  EXPECT_EQ(Make(ProtocolKind::kOpenAiEmbeddings)->Groups(batch), (Groups{{0, 1, 2, 3, 4, 5}}));
}

TEST(OpenAiProtocolTest, CompletionsSendTheGroupsOwnParameters) {
  auto p = Make(ProtocolKind::kOpenAiCompletions);
  auto batch = Batch({"x", "y"}, 4096);
  for (const RequestPtr& r : batch) {
    r->params.temperature = 0.9;
    r->params.json = R"({"top_p":0.5,"stop":["END"],"model":"evil","stream":true,"n":3})";
  }
  json::value v = json::parse(p->Encode(batch).body);
  EXPECT_EQ(v.at("model"), "m1");  // the protocol's fields win
  EXPECT_EQ(v.at("prompt"), (json::array{"x", "y"}));
  EXPECT_EQ(v.at("max_tokens"), 4096);
  EXPECT_EQ(v.at("temperature"), 0.9);
  EXPECT_EQ(v.at("top_p"), 0.5);
  EXPECT_EQ(v.at("stop"), (json::array{"END"}));
  EXPECT_EQ(v.as_object().if_contains("stream"), nullptr);
  EXPECT_EQ(v.as_object().if_contains("n"), nullptr);
}

TEST(GenericProtocolTest, MixedParametersStayInOneCall) {
  auto batch = Batch({"a", "b"}, 16);
  batch[1]->params.max_tokens = 4096;
  batch[1]->params.temperature = 0.9;
  EXPECT_EQ(Make(ProtocolKind::kGeneric)->Groups(batch), (Groups{{0, 1}}));
  EXPECT_EQ(Make(ProtocolKind::kKServe)->Groups(batch), (Groups{{0, 1}}));
}

TEST(OpenAiProtocolTest, ChoicesAreMappedByIndexNotPosition) {
  auto batch = Batch({"p0", "p1", "p2"});
  BatchResult r = Make(ProtocolKind::kOpenAiCompletions)
                      ->Decode(200,
                               R"({"model":"llama","choices":[{"index":2,"text":"c"},
                                   {"index":0,"text":"a"},{"index":1,"text":"b"}],
                                   "usage":{"total_tokens":9}})",
                               batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.model_version, "");  // "model" is a name; HttpBackend fills in its version
  EXPECT_EQ(r.items[0].output, "a");
  EXPECT_EQ(r.items[1].output, "b");
  EXPECT_EQ(r.items[2].output, "c");
}

TEST(OpenAiProtocolTest, BadChoicesAreBatchErrors) {
  auto p = Make(ProtocolKind::kOpenAiCompletions);
  auto batch = Batch({"a", "b"});
  ExpectBatchError(p->Decode(200, R"({"choices":[{"index":0,"text":"x"}]})", batch),
                   "expected 2 choices, got 1");
  ExpectBatchError(
      p->Decode(200, R"({"choices":[{"index":0,"text":"x"},{"index":0,"text":"y"}]})", batch),
      "index 0 appears twice");
  ExpectBatchError(
      p->Decode(200, R"({"choices":[{"index":0,"text":"x"},{"index":5,"text":"y"}]})", batch),
      "choices[1].index must be an integer in [0, 2)");
  ExpectBatchError(p->Decode(200, R"({"choices":[{"index":0,"text":"x"},{"index":1}]})", batch),
                   "choices[1].text must be a string");
  ExpectBatchError(p->Decode(429, R"({"error":{"message":"slow down"}})", batch),
                   "HTTP 429: slow down");
}

TEST(OpenAiProtocolTest, EmbeddingsRoundTrip) {
  auto p = Make(ProtocolKind::kOpenAiEmbeddings);
  auto batch = Batch({"a", "b"});
  EncodedBatch e = p->Encode(batch);
  EXPECT_EQ(e.target, "/v1/embeddings");
  EXPECT_EQ(json::parse(e.body), (json::object{{"model", "m1"}, {"input", {"a", "b"}}}));
  BatchResult r = p->Decode(
      200, R"({"data":[{"index":1,"embedding":[0.5,1]},{"index":0,"embedding":[0.25]}]})", batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(json::parse(r.items[0].output), (json::array{0.25}));
  EXPECT_EQ(json::parse(r.items[1].output), (json::array{0.5, 1}));
  ExpectBatchError(
      p->Decode(200, R"({"data":[{"index":1,"embedding":["x"]},{"index":0,"embedding":[]}]})",
                batch),
      "only numbers");
}

TEST(KServeProtocolTest, EncodesABytesColumnTensor) {
  auto batch = Batch({"a", "b"}, 5);
  EncodedBatch e = Make(ProtocolKind::kKServe)->Encode(batch);
  EXPECT_EQ(e.target, "/v2/models/m1/infer");
  json::value v = json::parse(e.body);
  const json::value& in = v.at("inputs").at(0);
  EXPECT_EQ(in.at("name"), "text_input");
  EXPECT_EQ(in.at("datatype"), "BYTES");
  EXPECT_EQ(in.at("shape"), (json::array{2, 1}));
  EXPECT_EQ(in.at("data"), (json::array{"a", "b"}));
  EXPECT_EQ(v.at("inputs").at(1).at("data"), (json::array{5, 5}));
}

TEST(KServeProtocolTest, DecodesRowsFlatOrNested) {
  auto p = Make(ProtocolKind::kKServe);
  auto batch = Batch({"a", "b"});
  BatchResult r = p->Decode(200, R"({"model_name":"m1","model_version":"3","outputs":[
      {"name":"tokens_used","shape":[2,1],"datatype":"INT32","data":[4,6]},
      {"name":"text_output","shape":[2,1],"datatype":"BYTES","data":[["x"],"y"]}]})",
                            batch);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.model_version, "3");
  EXPECT_EQ(r.items[0].output, "x");
  EXPECT_EQ(r.items[0].tokens_used, 4u);
  EXPECT_EQ(r.items[1].output, "y");
  EXPECT_EQ(r.items[1].tokens_used, 6u);
}

TEST(KServeProtocolTest, BadTensorsAreBatchErrors) {
  auto p = Make(ProtocolKind::kKServe);
  auto batch = Batch({"a", "b"});
  ExpectBatchError(p->Decode(200, R"({"outputs":[]})", batch), "no output tensor \"text_output\"");
  ExpectBatchError(
      p->Decode(200, R"({"outputs":[{"name":"text_output","shape":[1,1],"data":["x"]}]})", batch),
      "must have shape [2, 1]");
  ExpectBatchError(
      p->Decode(200, R"({"outputs":[{"name":"text_output","shape":[2,1],"data":["x"]}]})", batch),
      "has 1 rows, expected 2");
  ExpectBatchError(
      p->Decode(200, R"({"outputs":[{"name":"text_output","shape":[2,1],"data":["x",2]}]})", batch),
      "row 1 must be a string");
  ExpectBatchError(p->Decode(400, R"({"error":"bad input"})", batch), "HTTP 400: bad input");
  ExpectBatchError(p->Decode(200, "", batch), "invalid JSON");
}

}  // namespace
}  // namespace sluice::http_backend
