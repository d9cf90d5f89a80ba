// Chat through a backend that speaks chat (`openai_api: chat`, a real
// `sluice model-server` streaming its words at a set rate): each piece is
// relayed as it arrives, so the client reads the first before the model
// server has finished; a client that hangs up mid-stream cancels the call
// at the model server; the backend's usage is what the client is told.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "backends/sim/sim_model.h"
#include "modelserver/model_server_process.h"
#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

namespace json = boost::json;
using modelserver::testing::ModelServerProcess;

constexpr std::string_view kRemoteModel = "chat-sim";
// What the model server makes of the conversation below ("role: content").
constexpr std::string_view kServerInput = "user: hi there\n";
constexpr int kMaxTokens = 40;  // at 20 words a second: about 2 s of stream

std::string ChatBody(bool stream) {
  return std::string(R"({"model":"sluice-sim-small","max_tokens":)") + std::to_string(kMaxTokens) +
         R"(,"messages":[{"role":"user","content":"hi there"}])" +
         (stream ? R"(,"stream":true,"stream_options":{"include_usage":true}})" : "}");
}

class OpenAiStreamTest : public SluiceTest {
 protected:
  // The model's accelerator_timeout_ms.
  int64_t accelerator_timeout_ms_ = 3'000;

  void SetUp() override {
    server_ = std::make_unique<ModelServerProcess>(
        SLUICE_BINARY,
        std::vector<std::string>{"--model", std::string(kRemoteModel), "--fixed-latency-us", "5000",
                                 "--per-item-latency-us", "0", "--stream-tokens-per-second", "20"});
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    TestConfig config;
    config.max_batch_size = 1;
    config.max_batch_delay_us = 0;
    config.accelerator_timeout_ms = accelerator_timeout_ms_;
    config.backend_yaml =
        "    backend:\n      kind: openai\n      openai_api: chat\n"
        "      endpoints: [\"" +
        server_->url() +
        "\"]\n      remote_model: chat-sim\n"
        "      connections_per_endpoint: 1\n      request_timeout_ms: 2000\n";
    ASSERT_NO_FATAL_FAILURE(StartSluice(config));
  }

  // The model server's chat stream counters.
  json::value Streams() {
    HttpClient client(server_->port(), std::chrono::milliseconds(5'000));
    Result<Response> r = client.Get("/admin/streams", {});
    return r.ok() && r->status == 200 ? r->Json() : json::value();
  }

  // Sends a streamed chat on a raw connection; returns its descriptor.
  int SendStreamedChat() {
    int fd = Connect();
    if (fd < 0) return -1;
    const std::string body = ChatBody(/*stream=*/true);
    const std::string request =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer " +
        std::string(kPaidKey) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Reads from `fd` until `needle` has arrived (bounded by `limit`);
  // everything read so far is in *got.
  static bool ReadUntil(int fd, std::string_view needle, std::string* got,
                        std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (got->find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      got->append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  std::unique_ptr<ModelServerProcess> server_;
};

// The text of the content deltas in a chunked event stream.
std::string StreamedText(const std::string& raw) {
  std::string text;
  std::istringstream lines(raw);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("data: {")) continue;
    json::value chunk = json::parse(line.substr(6));
    for (const json::value& c : chunk.at("choices").as_array()) {
      if (const json::value* content = c.at("delta").as_object().if_contains("content")) {
        text += content->as_string();
      }
    }
  }
  return text;
}

TEST_F(OpenAiStreamTest, PiecesArriveBeforeTheModelServerHasFinished) {
  int fd = SendStreamedChat();
  ASSERT_GE(fd, 0);
  std::string got;
  // The role chunk, then the first word: the model server is still writing.
  ASSERT_TRUE(ReadUntil(fd, R"("delta":{"content":")", &got)) << got;
  json::value during = Streams();
  EXPECT_EQ(during.at("started"), 1) << during;
  EXPECT_EQ(during.at("finished"), 0) << "the first piece came only after the whole answer";
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream\r\n"), std::string::npos) << got;
  ASSERT_TRUE(ReadUntil(fd, "data: [DONE]", &got)) << got;
  ASSERT_TRUE(ReadUntil(fd, "\r\n0\r\n\r\n", &got)) << got;
  ::close(fd);
  sim::SimCompletion want = sim::SimulateCompletion(kRemoteModel, kServerInput, kMaxTokens);
  EXPECT_EQ(StreamedText(got), want.output);
  // The backend's usage, not an estimate.
  const std::string usage = R"("usage":{"prompt_tokens":)" +
                            std::to_string(sim::InputTokens(kServerInput)) +
                            R"(,"completion_tokens":)" +
                            std::to_string(want.tokens_used - sim::InputTokens(kServerInput));
  EXPECT_NE(got.find(usage), std::string::npos) << got;
  EXPECT_EQ(Streams().at("finished"), 1);
}

TEST_F(OpenAiStreamTest, AClientThatHangsUpMidStreamCancelsTheBackendCall) {
  int fd = SendStreamedChat();
  ASSERT_GE(fd, 0);
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, R"("delta":{"content":")", &got)) << got;
  ::close(fd);
  // The gateway drops its call: the model server's write fails mid-stream.
  EXPECT_TRUE(PollUntil([&] { return Streams().at("cancelled") == 1; },
                        std::chrono::milliseconds(5'000), std::chrono::milliseconds(20)))
      << Streams();
  EXPECT_EQ(Streams().at("finished"), 0);
  // The slot is free again: a plain chat is answered.
  auto client = NewClient();
  Result<Response> r =
      client->Post("/v1/chat/completions", ChatBody(/*stream=*/false), {Bearer(kPaidKey)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  json::value v = r->Json();
  sim::SimCompletion want = sim::SimulateCompletion(kRemoteModel, kServerInput, kMaxTokens);
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content").as_string(), want.output);
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), sim::InputTokens(kServerInput));
  EXPECT_EQ(v.at("usage").at("total_tokens"), want.tokens_used);
}

// The accelerator timeout is far shorter than the stream: once its first
// piece has reached the client, the answer runs to its end, once.
class OpenAiLongStreamTest : public OpenAiStreamTest {
 protected:
  void SetUp() override {
    accelerator_timeout_ms_ = 200;
    OpenAiStreamTest::SetUp();
  }
};

TEST_F(OpenAiLongStreamTest, AStreamLongerThanTheAcceleratorTimeoutRunsToItsEndOnce) {
  sim::SimCompletion want = sim::SimulateCompletion(kRemoteModel, kServerInput, kMaxTokens);
  const int64_t words = want.tokens_used - sim::InputTokens(kServerInput);
  // At 20 words a second the stream lasts words x 50 ms: well past 200 ms.
  ASSERT_GE(words * 50, 2 * 200) << "the conversation's answer is too short for this test";
  int fd = SendStreamedChat();
  ASSERT_GE(fd, 0);
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, "\r\n0\r\n\r\n", &got)) << got;
  ::close(fd);
  EXPECT_EQ(StreamedText(got), want.output);  // neither cut short nor sent twice
  EXPECT_EQ(got.find(R"("error")"), std::string::npos) << got;
  json::value streams = Streams();
  EXPECT_EQ(streams.at("started"), 1) << streams;  // no retry
  EXPECT_EQ(streams.at("finished"), 1) << streams;
}

}  // namespace
}  // namespace sluice::testing
