// Hostile clients over real sockets against the real binary: credentials
// are checked before a body is read, every buffer a client can grow is
// bounded (the server's RSS is measured), and the server keeps serving.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

class HostileInputTest : public SluiceTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartSluice(TestConfig{})); }

  // The server's resident set size, in KiB (0 when unreadable).
  int64_t ServerRssKib() {
    std::ifstream status("/proc/" + std::to_string(process().pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return 0;
  }
};

std::string BodyOf(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST_F(HostileInputTest, UnknownKeyIsRefusedBeforeTheBodyAndTheConnectionClosed) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  // A 1 MB body is announced but never sent: the answer must not wait for it.
  const std::string header =
      "POST /v1/inference HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-nope\r\n"
      "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
  ASSERT_EQ(::send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  bool closed = false;
  std::string reply = ReadUntilClose(fd, milliseconds(5'000), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(IsError(401, BodyOf(reply), 401, "unauthenticated")) << reply;
  EXPECT_EQ(ErrorMessage(BodyOf(reply)), "unknown or malformed API key");
  ExpectStillServing();
}

TEST_F(HostileInputTest, ExpectContinueIsAnsweredOnlyForAValidKey) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string header =
      "POST /v1/inference HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: 20\r\n\r\n";
  ASSERT_EQ(::send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  bool closed = false;
  std::string reply = ReadUntilClose(fd, milliseconds(5'000), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.find("100 Continue"), std::string::npos) << reply;
  EXPECT_EQ(reply.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << reply;
  EXPECT_EQ(ErrorMessage(BodyOf(reply)),
            "missing Authorization header (expected 'Bearer <api key>')");
}

TEST_F(HostileInputTest, EndlessChunkExtensionIsCutOffWithBoundedMemory) {
  const int64_t rss_before = ServerRssKib();
  ASSERT_GT(rss_before, 0);
  // Four connections each send a chunk-size line that never ends.
  std::string replies[4];
  for (std::string& reply : replies) {
    int fd = Connect();
    ASSERT_GE(fd, 0);
    std::string start =
        "POST /v1/inference HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kPaidKey) +
        "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1;a=";
    ASSERT_EQ(::send(fd, start.data(), start.size(), 0), static_cast<ssize_t>(start.size()));
    std::string junk;
    for (int i = 0; i < 1024; ++i) junk += ";b=c";
    size_t sent = 0;
    for (int i = 0; i < 2048; ++i) {  // up to 8 MiB, until the server stops reading
      ssize_t n = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    EXPECT_GT(sent, 0u);
    bool closed = false;
    reply = ReadUntilClose(fd, milliseconds(5'000), &closed);
    ::close(fd);
    EXPECT_TRUE(closed) << "the connection stayed open";
  }
  for (const std::string& reply : replies) {
    EXPECT_EQ(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << reply;
    EXPECT_TRUE(IsError(400, BodyOf(reply), 400, "invalid_request")) << reply;
    EXPECT_EQ(ErrorMessage(BodyOf(reply)), "chunk header or trailer block exceeds 20480 bytes");
  }
  // Each connection held at most ~20 KiB of request bytes; allow for
  // allocator noise, far below the hundreds of MiB an unbounded buffer took.
  EXPECT_LT(ServerRssKib() - rss_before, 16 * 1024);
  ExpectStillServing();
}

TEST_F(HostileInputTest, TooManyHeaderFieldsGet431) {
  auto client = NewClient();
  std::string header = "GET /internal/health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 150; ++i) header += "X-F: v\r\n";
  header += "\r\n";
  int fd = Connect();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  bool closed = false;
  std::string reply = ReadUntilClose(fd, milliseconds(5'000), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply;
  EXPECT_EQ(ErrorMessage(BodyOf(reply)), "request headers exceed 16384 bytes or 100 fields");
}

TEST_F(HostileInputTest, UnknownRouteIsAnswered404AndClosedWithoutReadingTheBody) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string header = "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n";
  ASSERT_EQ(::send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  bool closed = false;
  std::string reply = ReadUntilClose(fd, milliseconds(5'000), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << reply;
  EXPECT_EQ(ErrorMessage(BodyOf(reply)), "no route for /nowhere");
}

}  // namespace
}  // namespace sluice::testing
