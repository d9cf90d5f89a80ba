// Connection limits over real sockets: an idle keep-alive connection, a
// request whose headers stop half way, and one whose body stops half way are
// closed by the server's timeouts, and the server keeps serving others.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/sluice_fixture.h"

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int64_t kIdleMs = 300;
constexpr int64_t kReadMs = 400;

class ConnectionTimeoutsTest : public SluiceTest {
 protected:
  void SetUp() override {
    std::string yaml = TestConfig{}.Yaml();
    auto replace = [&](const std::string& from, const std::string& to) {
      size_t at = yaml.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      yaml.replace(at, from.size(), to);
    };
    ASSERT_NO_FATAL_FAILURE(
        replace("idle_timeout_ms: 60000", "idle_timeout_ms: " + std::to_string(kIdleMs)));
    ASSERT_NO_FATAL_FAILURE(
        replace("read_timeout_ms: 10000", "read_timeout_ms: " + std::to_string(kReadMs)));
    ASSERT_NO_FATAL_FAILURE(StartSluiceWithYaml(yaml));
  }

  // Waits (bounded) until the server closes `fd`; returns how long it took,
  // or nullopt if it stayed open for `limit`. Any bytes sent are discarded.
  std::optional<milliseconds> WaitForClose(int fd, milliseconds limit) {
    const auto start = Clock::now();
    while (Clock::now() - start < limit) {
      pollfd p{fd, POLLIN, 0};
      int left = static_cast<int>(
          std::chrono::duration_cast<milliseconds>(limit - (Clock::now() - start)).count());
      if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      }
    }
    return std::nullopt;
  }
};

TEST_F(ConnectionTimeoutsTest, IdleKeepAliveConnectionIsClosed) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  auto closed_after = WaitForClose(fd, milliseconds(5'000));
  ::close(fd);
  ASSERT_TRUE(closed_after.has_value()) << "idle connection still open after 5 s";
  // Closed by the idle timeout, not at once.
  EXPECT_GE(closed_after->count(), kIdleMs / 2);
  ExpectStillServing();
}

TEST_F(ConnectionTimeoutsTest, RequestWhoseHeadersStallIsClosed) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string partial = "POST /v1/inference HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  auto closed_after = WaitForClose(fd, milliseconds(5'000));
  ::close(fd);
  EXPECT_TRUE(closed_after.has_value()) << "half-sent headers kept the connection open";
  ExpectStillServing();
}

TEST_F(ConnectionTimeoutsTest, RequestWhoseBodyStallsIsClosed) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string partial =
      "POST /v1/inference HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Authorization: Bearer " +
      std::string(kPaidKey) + "\r\nContent-Length: 100\r\n\r\n{\"model\":";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  auto closed_after = WaitForClose(fd, milliseconds(5'000));
  ::close(fd);
  ASSERT_TRUE(closed_after.has_value()) << "half-sent body kept the connection open";
  EXPECT_GE(closed_after->count(), kReadMs / 2);
  ExpectStillServing();
}

}  // namespace
}  // namespace sluice::testing
