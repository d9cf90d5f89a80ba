#include "common/text.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(SplitViewTest, KeepsEmptyPieces) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(SplitView("a,,b", ','), (V{"a", "", "b"}));
  EXPECT_EQ(SplitView("", ','), (V{""}));
  EXPECT_EQ(SplitView("10s-20s", '-'), (V{"10s", "20s"}));
  EXPECT_EQ(SplitView("x:", ':'), (V{"x", ""}));
}

}  // namespace
}  // namespace sluice
