#include "common/thread_name.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>

#include <sys/syscall.h>
#include <unistd.h>

namespace sluice {
namespace {

// What the kernel reports for the calling thread (top, ps and perf read it).
std::string KernelName() {
  std::ifstream in("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  const std::string main_before = KernelName();
  std::string seen, kernel;
  std::thread t([&] {
    SetCurrentThreadName("log-writer");
    seen = CurrentThreadName();
    kernel = KernelName();
  });
  t.join();
  EXPECT_EQ(seen, "log-writer");
  EXPECT_EQ(kernel, "log-writer");
  EXPECT_EQ(KernelName(), main_before);
}

TEST(ThreadNameTest, LongNamesKeepTheirFirstFifteenBytes) {
  std::string seen;
  std::thread t([&] {
    SetCurrentThreadName("claim-sluice-sim-small");
    seen = CurrentThreadName();
  });
  t.join();
  EXPECT_EQ(seen, "claim-sluice-si");
}

}  // namespace
}  // namespace sluice
