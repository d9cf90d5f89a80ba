#include "loadgen/request_factory.h"

#include <cmath>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace sluice::loadgen {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

WorkloadSpec Spec() {
  WorkloadSpec w;
  w.tiers = {{"free", 70, {"sk-free-a", "sk-free-b"}},
             {"paid", 25, {"sk-paid"}},
             {"enterprise", 5, {"sk-ent"}}};
  w.models = {{"small", 3}, {"large \"q\"", 1}};
  w.input_bytes = {17, 300};
  w.max_tokens = 12;
  return w;
}

RequestFactory::Options Opts(uint32_t stream = 0) {
  RequestFactory::Options o;
  o.host_header = "127.0.0.1:8080";
  o.seed = 5;
  o.stream_id = stream;
  return o;
}

TEST(RequestFactoryTest, DrawsTiersAndModelsByWeight) {
  RequestFactory f(Spec(), Opts());
  std::map<uint32_t, int> tiers, models;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const PlannedRequest r = f.Plan();
    tiers[r.tier]++;
    models[r.model]++;
    ASSERT_GE(r.input_bytes, 17u);
    ASSERT_LE(r.input_bytes, 300u);
  }
  EXPECT_NEAR(tiers[0] / double(n), 0.70, 0.01);
  EXPECT_NEAR(tiers[1] / double(n), 0.25, 0.01);
  EXPECT_NEAR(tiers[2] / double(n), 0.05, 0.005);
  EXPECT_NEAR(models[0] / double(n), 0.75, 0.01);
}

TEST(RequestFactoryTest, PooledInputsFollowZipfAndReadTheSameFromEveryFactory) {
  WorkloadSpec spec = Spec();
  spec.inputs = {100, 1.1};
  RequestFactory a(spec, Opts(0));
  RequestFactory::Options other = Opts(1);
  other.seed = 99;  // another load thread: another seed and stream
  RequestFactory b(spec, other);
  std::map<uint32_t, int> counts;
  std::map<uint32_t, std::string> text;  // pool index -> input, as the first factory wrote it
  std::string body;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    RequestFactory* f = i % 2 == 0 ? &a : &b;
    const PlannedRequest r = f->Plan();
    ASSERT_TRUE(r.pool_index.has_value());
    ASSERT_LT(*r.pool_index, 100u);
    counts[*r.pool_index]++;
    f->RenderBody(r, &body);
    const std::string input(boost::json::parse(body).at("input").as_string());
    ASSERT_EQ(input.size(), r.input_bytes);
    auto [it, fresh] = text.emplace(*r.pool_index, input);
    if (!fresh) {
      ASSERT_EQ(it->second, input) << "pool index " << *r.pool_index;
    }
  }
  // Weights 1 / k^1.1 over k = 1..100: the head's shares.
  double total = 0;
  for (int k = 1; k <= 100; ++k) total += std::pow(k, -1.1);
  EXPECT_NEAR(counts[0] / double(n), 1 / total, 0.01);
  EXPECT_NEAR(counts[1] / double(n), std::pow(2, -1.1) / total, 0.01);
  EXPECT_NEAR(counts[99] / double(n), std::pow(100, -1.1) / total, 0.002);
  std::set<std::string> distinct;
  for (const auto& [index, input] : text) distinct.insert(input);
  EXPECT_EQ(distinct.size(), text.size());  // one text per index
}

TEST(RequestFactoryTest, InputDistributionParses) {
  EXPECT_EQ(ParseInputDistribution("unique", 10)->pool, 0u);
  Result<InputDistribution> z = ParseInputDistribution("zipf:1.1", 10'000);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->pool, 10'000u);
  EXPECT_DOUBLE_EQ(z->zipf_s, 1.1);
  EXPECT_EQ(ParseInputDistribution("zipf:-1", 10).status().message(),
            "--input-dist: expected unique or zipf:S with 0 <= S <= 100, got `zipf:-1`");
  EXPECT_EQ(ParseInputDistribution("zipf", 10).status().message(),
            "--input-dist: expected unique or zipf:S with 0 <= S <= 100, got `zipf`");
  EXPECT_EQ(ParseInputDistribution("zipf:1", 0).status().message(),
            "--input-pool: must be between 1 and 10000000, got 0");
}

TEST(RequestFactoryTest, BodiesAreValidJsonWithDistinctInputsOfTheDrawnSize) {
  RequestFactory a(Spec(), Opts(0)), b(Spec(), Opts(1));
  std::set<std::string> inputs;
  std::string body;
  for (int i = 0; i < 2000; ++i) {
    for (RequestFactory* f : {&a, &b}) {
      const PlannedRequest r = f->Plan();
      f->RenderBody(r, &body);
      auto doc = boost::json::parse(body).as_object();
      const std::string input(doc.at("input").as_string());
      ASSERT_EQ(input.size(), r.input_bytes);
      ASSERT_TRUE(inputs.insert(input).second) << "duplicate input " << input;
      ASSERT_EQ(doc.at("model").as_string(), Spec().models[r.model].name);
      ASSERT_EQ(doc.at("parameters").at("max_tokens").as_int64(), 12);
    }
  }
}

TEST(RequestFactoryTest, RendersAFullRequestWithTheTiersKeyInTurn) {
  WorkloadSpec w = Spec();
  w.tiers = {{"free", 1, {"sk-free-a", "sk-free-b"}}};
  w.max_tokens = 0;
  RequestFactory f(w, Opts());
  std::string text;
  std::vector<std::string> keys;
  for (int i = 0; i < 3; ++i) {
    f.Render(f.Plan(), &text);
    EXPECT_THAT(text, StartsWith("POST /v1/inference HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
    const size_t auth = text.find("Authorization: Bearer ");
    ASSERT_NE(auth, std::string::npos);
    keys.push_back(text.substr(auth + 22, text.find("\r\n", auth) - auth - 22));
    const size_t header_end = text.find("\r\n\r\n");
    const std::string body = text.substr(header_end + 4);
    EXPECT_THAT(text, HasSubstr("Content-Length: " + std::to_string(body.size()) + "\r\n"));
    EXPECT_FALSE(boost::json::parse(body).as_object().contains("parameters"));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"sk-free-a", "sk-free-b", "sk-free-a"}));
}

TEST(RequestFactoryTest, AnAsyncWorkloadAsksForAnswersLater) {
  WorkloadSpec w = Spec();
  std::string text;
  RequestFactory(w, Opts()).Render(RequestFactory(w, Opts()).Plan(), &text);
  EXPECT_THAT(text, Not(HasSubstr("Prefer:")));
  w.async = true;
  RequestFactory f(w, Opts());
  f.Render(f.Plan(), &text);
  const size_t header_end = text.find("\r\n\r\n");
  EXPECT_THAT(text.substr(0, header_end + 2), HasSubstr("\r\nPrefer: respond-async\r\n"));
}

TEST(RequestFactoryTest, OpenAiBodiesCarryTheInputAsTheirTextOrMessage) {
  WorkloadSpec w = Spec();
  w.api = Api::kOpenAiEmbeddings;
  RequestFactory e(w, Opts());
  std::string body;
  PlannedRequest r = e.Plan();
  e.RenderBody(r, &body);
  auto doc = boost::json::parse(body).as_object();
  EXPECT_EQ(doc.size(), 2u) << body;  // model, input
  EXPECT_EQ(doc.at("input").as_string().size(), r.input_bytes);

  w.api = Api::kOpenAiChat;
  RequestFactory c(w, Opts());
  r = c.Plan();
  c.RenderBody(r, &body);
  doc = boost::json::parse(body).as_object();
  EXPECT_EQ(doc.at("stream"), true);
  EXPECT_EQ(doc.at("max_tokens"), 12);
  const auto& message = doc.at("messages").at(0);
  EXPECT_EQ(message.at("role"), "user");
  EXPECT_EQ(message.at("content").as_string().size(), r.input_bytes);
  EXPECT_STREQ(ApiPath(Api::kOpenAiChat), "/v1/chat/completions");
  EXPECT_EQ(ParseApi("openai-embeddings").value(), Api::kOpenAiEmbeddings);
  EXPECT_EQ(ParseApi("grpc").status().message(),
            "--api: expected inference, openai-embeddings or openai-chat, got `grpc`");
}

}  // namespace
}  // namespace sluice::loadgen
