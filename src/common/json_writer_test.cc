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
