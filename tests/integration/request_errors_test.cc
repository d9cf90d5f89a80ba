// The front door's answers to bad requests, over real HTTP: each error status
// with its JSON shape and code, and that the server keeps serving afterwards.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

constexpr uint64_t kBodyLimit = 2048;
constexpr uint32_t kHeaderLimit = 8192;

class RequestErrorsTest : public SluiceTest {
 protected:
  void SetUp() override {
    TestConfig config;
    config.body_limit_bytes = kBodyLimit;
    config.header_limit_bytes = kHeaderLimit;
    ASSERT_NO_FATAL_FAILURE(StartSluice(config));
    client_ = NewClient();
  }

  // Sends on the shared keep-alive connection; a transport error comes back
  // as status 0 with the error in the body, so assertions show it.
  Response Send(std::string_view method, std::string_view target, std::string body,
                const Headers& headers) {
    Result<Response> r = client_->Request(method, target, std::move(body), headers);
    if (!r.ok()) {
      client_->Close();
      return Response{0, r.status().ToString(), {}};
    }
    return *r;
  }
  Response PostInference(std::string body, const Headers& headers = {Bearer(kPaidKey)}) {
    return Send("POST", "/v1/inference", std::move(body), headers);
  }

  // A valid request on a new connection succeeds: the server is still serving.
  void ExpectStillServing() {
    auto fresh = NewClient();
    Result<Response> r =
        fresh->Post("/v1/inference", InferenceBody(kModel, "still alive?"), {Bearer(kFreeKey)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(IsCompletion(r->status, r->body, "still alive?", kDefaultMaxTokens));
  }

  std::unique_ptr<HttpClient> client_;
};

TEST_F(RequestErrorsTest, ValidRequestGetsTheSimulatorsOutput) {
  Response r = PostInference(InferenceBody(kModel, "hello sluice"));
  EXPECT_TRUE(IsCompletion(r.status, r.body, "hello sluice", kDefaultMaxTokens));
  EXPECT_TRUE(r.Header("Content-Type").starts_with("application/json")) << r.Header("Content-Type");

  // Same keep-alive connection, explicit parameters.
  Response with_params = PostInference(
      R"({"model": "sluice-sim-small", "input": "five words please",
          "parameters": {"max_tokens": 5, "temperature": 0.7}})");
  EXPECT_TRUE(IsCompletion(with_params.status, with_params.body, "five words please", 5));
}

TEST_F(RequestErrorsTest, MalformedJsonIs400) {
  const std::vector<std::string> bodies = {
      R"({"model": "sluice-sim-small", "input": )",
      "not json at all",
      R"({"model": "sluice-sim-small", "input": "x"} trailing)",
      "",
  };
  for (const std::string& body : bodies) {
    SCOPED_TRACE("body: " + body);
    EXPECT_TRUE(IsError(PostInference(body), 400, "invalid_request"));
  }
}

TEST_F(RequestErrorsTest, InferenceErrorsCarryTheRequestIdOfTheirHeader) {
  Response r = PostInference(R"({"input": "no model"})");
  ASSERT_TRUE(IsError(r.status, r.body, 400, "invalid_request"));
  std::string id = ErrorRequestId(r.body);
  EXPECT_TRUE(IsRequestId(id)) << r.body;
  EXPECT_EQ(r.Header("X-Request-Id"), id);
}

TEST_F(RequestErrorsTest, BodyThatIsNotAnObjectIs400) {
  for (const std::string body : {"[1, 2, 3]", "\"just a string\"", "42", "null"}) {
    SCOPED_TRACE("body: " + body);
    EXPECT_TRUE(IsError(PostInference(body), 400, "invalid_request"));
  }
}

struct FieldCase {
  std::string body;
  std::string field;  // the message must name it
};

TEST_F(RequestErrorsTest, MissingOrWrongTypedFieldIs400NamingTheField) {
  const std::vector<FieldCase> cases = {
      {R"({"input": "no model"})", "model"},
      {R"({"model": "sluice-sim-small"})", "input"},
      {R"({"model": 7, "input": "x"})", "model"},
      {R"({"model": null, "input": "x"})", "model"},
      {R"({"model": "sluice-sim-small", "input": 42})", "input"},
      {R"({"model": "sluice-sim-small", "input": ["a", "b"]})", "input"},
      {R"({"model": "sluice-sim-small", "input": "x", "parameters": "fast"})", "parameters"},
      {R"({"model": "sluice-sim-small", "input": "x", "parameters": {"max_tokens": "many"}})",
       "parameters.max_tokens"},
      {R"({"model": "sluice-sim-small", "input": "x", "parameters": {"max_tokens": 2.5}})",
       "parameters.max_tokens"},
      {R"({"model": "sluice-sim-small", "input": "x", "parameters": {"temperature": "hot"}})",
       "parameters.temperature"},
  };
  for (const FieldCase& c : cases) {
    SCOPED_TRACE("body: " + c.body);
    Response r = PostInference(c.body);
    EXPECT_TRUE(IsError(r, 400, "invalid_request"));
    EXPECT_NE(ErrorMessage(r.body).find(c.field), std::string::npos)
        << "message does not name \"" << c.field << "\": " << r.body;
  }
}

TEST_F(RequestErrorsTest, MaxTokensOutsideTheModelsRangeIs400) {
  for (int max_tokens : {0, -3, 4097}) {
    SCOPED_TRACE("max_tokens " + std::to_string(max_tokens));
    Response r = PostInference(InferenceBody(kModel, "x", max_tokens));
    EXPECT_TRUE(IsError(r, 400, "invalid_request"));
    EXPECT_NE(ErrorMessage(r.body).find("parameters.max_tokens"), std::string::npos) << r.body;
  }
  // The limit itself is accepted.
  Response at_limit = PostInference(InferenceBody(kModel, "at the limit", 4096));
  EXPECT_TRUE(IsCompletion(at_limit.status, at_limit.body, "at the limit", 4096));
}

TEST_F(RequestErrorsTest, MissingOrUnknownKeyIs401) {
  const std::string body = InferenceBody(kModel, "who am i");
  EXPECT_TRUE(IsError(PostInference(body, {}), 401, "unauthenticated")) << "no Authorization";
  EXPECT_TRUE(IsError(PostInference(body, {Bearer("sk-not-a-real-key")}), 401, "unauthenticated"))
      << "unknown key";
  EXPECT_TRUE(IsError(PostInference(body, {{"Authorization", "Basic c2stZnJlZQ=="}}), 401,
                      "unauthenticated"))
      << "not a Bearer credential";
  EXPECT_TRUE(IsError(PostInference(body, {{"Authorization", "Bearer"}}), 401, "unauthenticated"))
      << "empty Bearer";
  // Each demo key works.
  for (std::string_view key : {kFreeKey, kPaidKey, kEnterpriseKey}) {
    Response r = PostInference(body, {Bearer(key)});
    EXPECT_TRUE(IsCompletion(r.status, r.body, "who am i", kDefaultMaxTokens)) << key;
  }
}

TEST_F(RequestErrorsTest, UnknownModelIs404) {
  Response r = PostInference(InferenceBody("no-such-model", "x"));
  EXPECT_TRUE(IsError(r, 404, "not_found"));
  EXPECT_NE(ErrorMessage(r.body).find("no-such-model"), std::string::npos) << r.body;
}

TEST_F(RequestErrorsTest, UnknownPathIs404) {
  const Headers auth = {Bearer(kPaidKey)};
  EXPECT_TRUE(IsError(Send("GET", "/v1/nothing-here", "", auth), 404, "not_found"));
  EXPECT_TRUE(
      IsError(Send("POST", "/v2/inference", InferenceBody(kModel, "x"), auth), 404, "not_found"));
  EXPECT_TRUE(IsError(Send("GET", "/", "", auth), 404, "not_found"));
}

TEST_F(RequestErrorsTest, WrongMethodOnAKnownPathIs405WithAllow) {
  struct Case {
    std::string method, target, allowed;
    Headers headers;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/inference", "POST", {Bearer(kPaidKey)}},
      {"PUT", "/v1/inference", "POST", {Bearer(kPaidKey)}},
      {"DELETE", "/v1/inference", "POST", {Bearer(kPaidKey)}},
      {"POST", "/internal/health", "GET", {Bearer(kServiceToken)}},
      {"POST", "/metrics", "GET", {Bearer(kServiceToken)}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    Response r = Send(c.method, c.target, c.method == "GET" ? "" : "{}", c.headers);
    EXPECT_TRUE(IsError(r, 405, "method_not_allowed"));
    EXPECT_NE(r.Header("Allow").find(c.allowed), std::string::npos)
        << "Allow: \"" << r.Header("Allow") << "\"";
  }
}

TEST_F(RequestErrorsTest, BodyOverTheLimitIs413) {
  // Fits: the limit is on the body's bytes, and this body is just under it.
  std::string small_input(kBodyLimit - 100, 'a');
  std::string small_body = InferenceBody(kModel, small_input);
  ASSERT_LE(small_body.size(), kBodyLimit);
  Response fits = PostInference(small_body);
  EXPECT_TRUE(IsCompletion(fits.status, fits.body, small_input, kDefaultMaxTokens));

  std::string big_body = InferenceBody(kModel, std::string(4 * kBodyLimit, 'b'));
  Response r = PostInference(big_body);
  EXPECT_TRUE(IsError(r, 413, "payload_too_large"));
  ASSERT_NO_FATAL_FAILURE(ExpectStillServing());
}

TEST_F(RequestErrorsTest, DeclaredContentLengthOverTheLimitIs413) {
  // The server must not wait for a body it will refuse anyway.
  std::string raw =
      "POST /v1/inference HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer sk-paid-demo-0001\r\nContent-Type: application/json\r\n"
      "Content-Length: 10000000\r\n\r\n{\"model\": ";
  Result<RawReply> reply = SendRaw(port(), raw, std::chrono::milliseconds(5'000));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_TRUE(reply->response.has_value()) << "no response: " << reply->error;
  EXPECT_TRUE(IsError(*reply->response, 413, "payload_too_large"));
  ASSERT_NO_FATAL_FAILURE(ExpectStillServing());
}

TEST_F(RequestErrorsTest, MalformedHttpIsRejectedAndTheServerKeepsServing) {
  const std::vector<std::string> garbage = {
      "GARBAGE\r\n\r\n", "POST /v1/inference HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n",  // TLS hello
  };
  for (const std::string& bytes : garbage) {
    SCOPED_TRACE("bytes: " + bytes);
    Result<RawReply> reply = SendRaw(port(), bytes, std::chrono::milliseconds(5'000));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    if (reply->response) {
      EXPECT_EQ(reply->response->status, 400) << reply->response->body;
    } else {
      // Closing without an answer is acceptable; hanging until our timeout is not.
      EXPECT_NE(reply->error, "timeout");
    }
  }
  ASSERT_NO_FATAL_FAILURE(ExpectStillServing());
}

TEST_F(RequestErrorsTest, OversizedHeadersAreRejectedAndTheServerKeepsServing) {
  std::string raw =
      "GET /internal/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer svc-demo-token\r\nX-Padding: " +
      std::string(4 * kHeaderLimit, 'p') + "\r\n\r\n";
  Result<RawReply> reply = SendRaw(port(), raw, std::chrono::milliseconds(5'000));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  if (reply->response) {
    EXPECT_TRUE(reply->response->status == 431 || reply->response->status == 400)
        << reply->response->status << " " << reply->response->body;
  } else {
    EXPECT_NE(reply->error, "timeout");
  }
  ASSERT_NO_FATAL_FAILURE(ExpectStillServing());
}

}  // namespace
}  // namespace sluice::testing
