#include "redis/script_prelude.h"

#include <gtest/gtest.h>

#include <string>

#include "redis/scripts.h"

namespace sluice::redis::scripts {
namespace {

bool Defines(const std::string& script, const std::string& definition) {
  return script.find(definition) != std::string::npos;
}

TEST(ScriptPreludeTest, AScriptCarriesOnlyTheHelpersItNames) {
  const std::string body = "return fmt(1)\n";
  const std::string script = WithPrelude("t", body.c_str()).body();
  EXPECT_TRUE(Defines(script, "local function fmt(n)"));
  EXPECT_FALSE(Defines(script, "local function now_us()"));
  EXPECT_FALSE(Defines(script, "local function rate_write("));
  EXPECT_FALSE(Defines(script, "local W ="));
  EXPECT_TRUE(script.ends_with(body));
}

TEST(ScriptPreludeTest, HelpersBringTheHelpersTheyNameInTheirOrder) {
  const std::string script = WithPrelude("t", "return rate_write(KEYS[1], {}, {}, false)\n").body();
  // rate_write -> rate_hset -> RL_MARK, RL_MARK_VALUE; nothing about reading.
  const size_t mark = script.find("local RL_MARK =");
  const size_t value = script.find("local RL_MARK_VALUE =");
  const size_t hset = script.find("local function rate_hset(");
  const size_t write = script.find("local function rate_write(");
  ASSERT_NE(mark, std::string::npos);
  ASSERT_NE(value, std::string::npos);
  ASSERT_NE(hset, std::string::npos);
  ASSERT_NE(write, std::string::npos);
  EXPECT_LT(mark, value);
  EXPECT_LT(value, hset);
  EXPECT_LT(hset, write);
  EXPECT_FALSE(Defines(script, "local function rate_read("));
  EXPECT_FALSE(Defines(script, "local function gcra("));
  // A helper's comment comes with it.
  EXPECT_TRUE(Defines(script, "-- Writes `args` (key id, packed state, ...)"));
}

TEST(ScriptPreludeTest, ANameInsideALongerIdentifierOrACommentLineDoesNotCount) {
  const std::string script =
      WithPrelude("t", "local fmt_x, my_member = 1, 2\n  -- now_us() is not called\nreturn 0\n")
          .body();
  EXPECT_FALSE(Defines(script, "local function fmt("));
  EXPECT_FALSE(Defines(script, "local function member("));
  EXPECT_FALSE(Defines(script, "local function now_us("));
  // After code on its line, a comment is scanned too (only ever one more
  // helper, never one too few).
  EXPECT_TRUE(Defines(WithPrelude("t", "return 1  -- fmt\n").body(), "local function fmt("));
}

TEST(ScriptPreludeTest, TheQueueScriptsCarryWhatTheyCall) {
  const std::string enqueue = Enqueue().body();
  EXPECT_TRUE(Defines(enqueue, "local function now_us()"));
  EXPECT_TRUE(Defines(enqueue, "local function rate_hset("));
  EXPECT_FALSE(Defines(enqueue, "local function dead_push("));
  EXPECT_FALSE(Defines(enqueue, "local function publish_groups("));
  const std::string reap = Reap().body();
  EXPECT_TRUE(Defines(reap, "local function dead_push("));
  EXPECT_TRUE(Defines(reap, "local function publish_groups("));
  EXPECT_TRUE(Defines(reap, "local function parse_entry("));
}

}  // namespace
}  // namespace sluice::redis::scripts
