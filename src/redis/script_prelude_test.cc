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
  for (const char* d :
       {"local W =", "local function now_us()", "local function fmt(", "local function rate_parse(",
        "local RL_MARK =", "local RL_MARK_VALUE =", "local function rate_hset("}) {
    EXPECT_TRUE(Defines(enqueue, d)) << d;
  }
  for (const char* d : {"local function dead_push(", "local function publish_groups(",
                        "local function rate_read(", "local function member("}) {
    EXPECT_FALSE(Defines(enqueue, d)) << d;
  }
  const std::string claim = Claim().body();
  for (const char* d :
       {"local function now_us()", "local function fmt(", "local function parse_entry("}) {
    EXPECT_TRUE(Defines(claim, d)) << d;
  }
  EXPECT_FALSE(Defines(claim, "local function rate_hset("));
  const std::string complete = Complete().body();
  for (const char* d :
       {"local function member(", "local function parse_entry(", "local function fmt(",
        "local function publish_groups(", "local function rate_read(", "local function rate_write(",
        "local function settle_tat(", "local function units_to_us(", "local W ="}) {
    EXPECT_TRUE(Defines(complete, d)) << d;
  }
  const std::string reap = Reap().body();
  for (const char* d : {"local function dead_push(", "local function publish_groups(",
                        "local function parse_entry(", "local function member("}) {
    EXPECT_TRUE(Defines(reap, d)) << d;
  }
  const std::string withdraw = Withdraw().body();
  EXPECT_TRUE(Defines(withdraw, "local function member("));
  EXPECT_TRUE(Defines(withdraw, "local function parse_entry("));
  EXPECT_FALSE(Defines(withdraw, "local function now_us()"));
}

}  // namespace
}  // namespace sluice::redis::scripts
