#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, EmptyStaysEmpty) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_EQ(SanitizeUtf8(""), "");
  EXPECT_EQ(SanitizeUtf8("", 0), "");
  EXPECT_EQ(SanitizeUtf8("abc", 0), "");
}

TEST(Utf8Test, ValidTextPassesUnchanged) {
  const std::string text =
      "ascii, \xD0\xBE\xD1\x88\xD0\xB8\xD0\xB1\xD0\xBA\xD0\xB0 "
      "\xE6\xA8\xA1\xE5\x9E\x8B \xF0\x9F\x92\xA5";  // ошибка 模型 💥
  EXPECT_TRUE(IsValidUtf8(text));
  EXPECT_EQ(SanitizeUtf8(text), text);
  EXPECT_EQ(SanitizeUtf8(text, text.size()), text);  // exact limit
}

TEST(Utf8Test, CutsAsciiAtTheLimit) {
  EXPECT_EQ(SanitizeUtf8("hello world", 5), "hello");
  EXPECT_EQ(SanitizeUtf8("hello", 5), "hello");
  EXPECT_EQ(SanitizeUtf8("hello", 6), "hello");
}

TEST(Utf8Test, NeverSplitsAMultiByteCharacterAtTheLimit) {
  const std::string crash = "\xF0\x9F\x92\xA5";  // 💥, 4 bytes
  const std::string text = "ab" + crash + "c";
  EXPECT_EQ(SanitizeUtf8(text, 2), "ab");
  EXPECT_EQ(SanitizeUtf8(text, 3), "ab");
  EXPECT_EQ(SanitizeUtf8(text, 5), "ab");
  EXPECT_EQ(SanitizeUtf8(text, 6), "ab" + crash);
  EXPECT_EQ(SanitizeUtf8(text, 7), text);
  // Two-byte Cyrillic: an odd limit drops the half character.
  const std::string cyr = "\xD0\xBE\xD1\x88";  // "ош"
  EXPECT_EQ(SanitizeUtf8(cyr, 3), "\xD0\xBE");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8(cyr, 3)));
  // Three-byte CJK cut after one and two bytes of the second character.
  const std::string cjk = "\xE6\xA8\xA1\xE5\x9E\x8B";  // 模型
  EXPECT_EQ(SanitizeUtf8(cjk, 4), "\xE6\xA8\xA1");
  EXPECT_EQ(SanitizeUtf8(cjk, 5), "\xE6\xA8\xA1");
}

TEST(Utf8Test, TextAlreadyCutMidCharacterGetsAReplacement) {
  // What body.substr(0, n) used to produce: a trailing partial character.
  const std::string cut = std::string("ab\xF0\x9F\x92", 5);
  EXPECT_FALSE(IsValidUtf8(cut));
  EXPECT_EQ(SanitizeUtf8(cut), "ab" + kFffd);
  EXPECT_EQ(SanitizeUtf8(std::string("\xD0", 1)), kFffd);
  EXPECT_EQ(SanitizeUtf8(std::string("\xE6\xA8", 2)), kFffd);
}

TEST(Utf8Test, ReplacesStrayAndForbiddenBytes) {
  EXPECT_EQ(SanitizeUtf8("a\x80z"), "a" + kFffd + "z");  // lone continuation
  EXPECT_EQ(SanitizeUtf8("a\xFFz"), "a" + kFffd + "z");  // never valid
  EXPECT_EQ(SanitizeUtf8("a\xFE\xFFz"), "a" + kFffd + kFffd + "z");
  EXPECT_EQ(SanitizeUtf8("\xC3("), kFffd + "(");      // lead, no continuation
  EXPECT_EQ(SanitizeUtf8("\xE2\x82("), kFffd + "(");  // maximal subpart: one U+FFFD
}

TEST(Utf8Test, RejectsOverlongsSurrogatesAndOutOfRange) {
  const std::string overlong_slash = "\xC0\xAF";     // '/' in 2 bytes
  const std::string overlong3 = "\xE0\x80\xAF";      // '/' in 3 bytes
  const std::string overlong4 = "\xF0\x80\x80\xAF";  // '/' in 4 bytes
  const std::string surrogate = "\xED\xA0\x80";      // U+D800
  const std::string too_big = "\xF4\x90\x80\x80";    // U+110000
  const std::string f5 = "\xF5\x80\x80\x80";
  for (const std::string& bad : {overlong_slash, overlong3, overlong4, surrogate, too_big, f5}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(bad);
    const std::string clean = SanitizeUtf8(bad);
    EXPECT_TRUE(IsValidUtf8(clean));
    EXPECT_NE(clean.find(kFffd), std::string::npos);
    EXPECT_EQ(clean.find('/'), std::string::npos);
  }
  // The boundaries just inside the valid ranges stay.
  for (const std::string& good :
       {std::string("\xC2\x80"), std::string("\xE0\xA0\x80"), std::string("\xED\x9F\xBF"),
        std::string("\xEE\x80\x80"), std::string("\xF0\x90\x80\x80"),
        std::string("\xF4\x8F\xBF\xBF")}) {
    EXPECT_TRUE(IsValidUtf8(good)) << testing::PrintToString(good);
    EXPECT_EQ(SanitizeUtf8(good), good);
  }
}

TEST(Utf8Test, ReplacementCountsAgainstTheLimit) {
  // "a" + U+FFFD needs 4 bytes; with 3 the replacement does not fit.
  EXPECT_EQ(SanitizeUtf8("a\xFF", 3), "a");
  EXPECT_EQ(SanitizeUtf8("a\xFF", 4), "a" + kFffd);
  EXPECT_EQ(SanitizeUtf8("\xFF", 2), "");
}

TEST(Utf8Test, NulIsValidUtf8ButSanitizeTextReplacesIt) {
  const std::string with_nul("a\0b", 3);
  EXPECT_TRUE(IsValidUtf8(with_nul));
  EXPECT_EQ(SanitizeUtf8(with_nul), with_nul);
  EXPECT_EQ(SanitizeText(with_nul), "a" + kFffd + "b");
  EXPECT_EQ(SanitizeText("ok\xFF", 100), "ok" + kFffd);
}

TEST(Utf8Test, ResultIsAlwaysValidAndWithinTheLimit) {
  // Every 2-byte and many 3-byte inputs, cut at every limit.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  all += "\xF0\x9F\x92\xA5\xE6\xA8\xA1\xD0\xBE";
  for (size_t limit = 0; limit <= all.size() + 10; ++limit) {
    const std::string clean = SanitizeUtf8(all, limit);
    EXPECT_LE(clean.size(), limit);
    EXPECT_TRUE(IsValidUtf8(clean)) << limit;
  }
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const char bytes[] = {static_cast<char>(a), static_cast<char>(b)};
      const std::string clean = SanitizeUtf8(std::string_view(bytes, 2));
      ASSERT_TRUE(IsValidUtf8(clean)) << a << " " << b;
    }
  }
}

// IsValidUtf8 skips ASCII 8 bytes at a time: a bad byte or a character is
// found wherever it sits relative to those words.
TEST(Utf8Test, FindsABadByteOrACharacterAtEveryOffsetOfLongAscii) {
  for (size_t at = 0; at < 24; ++at) {
    std::string text(24, 'a');
    text[at] = '\xff';
    EXPECT_FALSE(IsValidUtf8(text)) << "stray byte at " << at;
    text = std::string(24, 'a');
    text.replace(at, 1, "\xC3\xA9");  // é, two bytes, across a word edge at 7, 15, 23
    EXPECT_TRUE(IsValidUtf8(text)) << "character at " << at;
    text.resize(at + 1);  // cut after its first byte
    EXPECT_FALSE(IsValidUtf8(text)) << "cut character at " << at;
  }
  EXPECT_TRUE(IsValidUtf8(std::string(1'000, 'x')));
}

}  // namespace
}  // namespace sluice
