#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace sluice {
namespace {

namespace json = boost::json;

TEST(JsonWriterTest, WritesMembersInOrder) {
  std::string out = "prefix|";
  JsonObjectWriter o(out);
  o.String("id", "req_1").Int("n", -42).Uint("u", 18446744073709551615ull).Double("d", 0.1);
  o.Close();
  EXPECT_EQ(out, R"(prefix|{"id":"req_1","n":-42,"u":18446744073709551615,"d":0.1})");
}

TEST(JsonWriterTest, EmptyObject) {
  std::string out;
  JsonObjectWriter(out).Close();
  EXPECT_EQ(out, "{}");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlCharacters) {
  std::string out;
  JsonObjectWriter o(out);
  o.String("s", std::string("a\"b\\c\nd\re\tf\x01g\0h", 15));
  o.Close();
  EXPECT_EQ(out, R"({"s":"a\"b\\c\nd\re\tf\u0001g\u0000h"})");
  EXPECT_EQ(json::parse(out).as_object().at("s").as_string(),
            std::string("a\"b\\c\nd\re\tf\x01g\0h", 15));
}

// The escaper skips eight bytes at a time while none needs escaping: every
// byte that does, at every offset of a long string (and next to a two-byte
// UTF-8 character, whose bytes >= 0x80 must not be mistaken for one), is
// still escaped, and the string reads back unchanged.
TEST(JsonWriterTest, EscapesAtEveryOffsetOfALongString) {
  struct Case {
    std::string text;
    size_t escaped_size;  // its size once escaped
  };
  const Case cases[] = {
      {"\"", 2},   {"\\", 2}, {"\n", 2}, {"\x1f", 6},    {std::string(1, '\0'), 6},
      {"\x7f", 1}, {" ", 1},  {"~", 1},  {"\xc3\xa9", 2}};
  for (const Case& c : cases) {
    for (size_t len = 1; len <= 40; ++len) {
      for (size_t at = 0; at < len; ++at) {
        // len - 1 "x" around the case, and "é" right after it when it fits.
        const bool neighbour = at + 2 < len;
        std::string text = std::string(at, 'x') + c.text + (neighbour ? "\xc3\xa9" : "") +
                           std::string(len - at - (neighbour ? 2 : 1), 'x');
        std::string out;
        AppendJsonString(out, text);
        ASSERT_EQ(json::parse(out).as_string(), text) << "len " << len << " at " << at;
        const size_t other = neighbour ? 2 : 0;  // the "é": two bytes for one "x"
        ASSERT_EQ(out.size(), len - 1 - (neighbour ? 1 : 0) + other + c.escaped_size + 2)
            << "len " << len << " at " << at << " case " << c.text;
      }
    }
  }
}

TEST(JsonWriterTest, MultiByteUtf8PassesThroughAndInvalidBytesAreRepaired) {
  std::string out;
  JsonObjectWriter o(out);
  o.String("ok", "Zürich ✓")
      .String("bad",
              "a\xff\xfe"
              "b");
  o.Close();
  const json::object parsed = json::parse(out).as_object();
  EXPECT_EQ(parsed.at("ok").as_string(), "Zürich ✓");
  EXPECT_EQ(parsed.at("bad").as_string(),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");  // U+FFFD each
}

TEST(JsonWriterTest, DoublesRoundTripAndNonFiniteOnesAreNull) {
  std::string out;
  JsonObjectWriter o(out);
  o.Double("a", 0.7).Double("b", 1.0 / 3).Double("c", 1e300).Double("d", 2.0);
  o.Double("inf", std::numeric_limits<double>::infinity()).Double("nan", std::nan(""));
  o.Close();
  const json::object parsed = json::parse(out).as_object();
  EXPECT_EQ(parsed.at("a").to_number<double>(), 0.7);
  EXPECT_EQ(parsed.at("b").to_number<double>(), 1.0 / 3);
  EXPECT_EQ(parsed.at("c").to_number<double>(), 1e300);
  EXPECT_EQ(parsed.at("d").to_number<double>(), 2.0);
  EXPECT_TRUE(parsed.at("inf").is_null());
  EXPECT_TRUE(parsed.at("nan").is_null());
}

TEST(JsonWriterTest, IntegerExtremes) {
  std::string out;
  JsonObjectWriter o(out);
  o.Int("min", std::numeric_limits<int64_t>::min()).Int("max", std::numeric_limits<int64_t>::max());
  o.Close();
  const json::object parsed = json::parse(out).as_object();
  EXPECT_EQ(parsed.at("min").as_int64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parsed.at("max").as_int64(), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace sluice
