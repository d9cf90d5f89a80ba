#include "backends/http/chat_backend.h"

#include <gtest/gtest.h>

namespace sluice::http_backend {
namespace {

TEST(TakeSseDataTest, TakesCompleteEventsAndKeepsAPartialOne) {
  std::string buffer = "data: {\"a\":1}\n\n: a comment\n\nevent: x\ndata: two\n\ndata: par";
  EXPECT_EQ(TakeSseData(buffer), (std::vector<std::string>{"{\"a\":1}", "two"}));
  EXPECT_EQ(buffer, "data: par");
  buffer += "tial\r\n\r\n";
  EXPECT_EQ(TakeSseData(buffer), std::vector<std::string>{"partial"});
  EXPECT_EQ(buffer, "");
}

TEST(TakeSseDataTest, NoSpaceAfterTheColonAndAnEmptyBuffer) {
  std::string buffer = "data:[DONE]\n\n";
  EXPECT_EQ(TakeSseData(buffer), std::vector<std::string>{"[DONE]"});
  EXPECT_TRUE(TakeSseData(buffer).empty());
}

TEST(ChatBackendTest, ABatchOfMoreThanOneIsRefused) {
  boost::asio::io_context ioc;
  HttpBackend::Options o;
  o.url = "http://127.0.0.1:1";
  o.model = "m";
  o.io_context = &ioc;
  auto backend = ChatBackend::Create(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  BatchResult got;
  (*backend)->RunBatch({std::make_shared<InferenceRequest>(), std::make_shared<InferenceRequest>()},
                       [&](BatchResult&& r) { got = std::move(r); });
  ioc.run();
  EXPECT_EQ(got.status.code(), ErrorCode::kInternal);
  EXPECT_NE(got.status.message().find("one request per call, not 2"), std::string::npos)
      << got.status.message();
}

}  // namespace
}  // namespace sluice::http_backend
