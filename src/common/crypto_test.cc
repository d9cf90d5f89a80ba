#include "common/crypto.h"

#include <gtest/gtest.h>

#include "common/ids.h"

namespace sluice {
namespace {

TEST(CryptoTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoTest, ParsesHexAndRejectsGarbage) {
  Sha256Digest d;
  ASSERT_TRUE(ParseSha256Hex(ToHex(Sha256("k")), &d));
  EXPECT_TRUE(ConstantTimeEqual(d, Sha256("k")));
  EXPECT_FALSE(ConstantTimeEqual(d, Sha256("j")));
  EXPECT_FALSE(ParseSha256Hex("abc", &d));
  EXPECT_FALSE(ParseSha256Hex(std::string(64, 'g'), &d));
}

TEST(IdsTest, RequestIdsHaveTheDocumentedShapeAndDiffer) {
  std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_EQ(a.size(), 36u);  // "req_" + 32 hex digits
  EXPECT_EQ(a.rfind("req_", 0), 0u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 4), std::string::npos) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 20), b.substr(0, 20));  // same 64-bit process prefix
  ASSERT_TRUE(LocalIdSequence(a).has_value());
  EXPECT_EQ(*LocalIdSequence(b), *LocalIdSequence(a) + 1);
}

TEST(IdsTest, ForeignOrMalformedIdsHaveNoLocalSequence) {
  std::string a = NewRequestId();
  for (size_t at : {4u, 19u}) {  // first and last digit of the process prefix
    std::string foreign = a;
    foreign[at] = foreign[at] == '0' ? '1' : '0';
    EXPECT_FALSE(LocalIdSequence(foreign).has_value()) << foreign;
  }
  EXPECT_FALSE(LocalIdSequence("req_zz").has_value());
  EXPECT_FALSE(LocalIdSequence(a.substr(0, 35) + "g").has_value());
  for (char bad : {'A', 'F', '/', ':', '`', 'g', ' ', '\0', '\xe9'}) {  // next to hex digits
    std::string in_sequence = a;
    in_sequence[27] = bad;
    EXPECT_FALSE(LocalIdSequence(in_sequence).has_value()) << static_cast<int>(bad);
  }
  EXPECT_FALSE(LocalIdSequence(a.substr(0, 20)).has_value());  // the old 16-digit shape
  EXPECT_FALSE(LocalIdSequence(a + "0").has_value());
}

TEST(CryptoTest, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string_view("\x00\xff\x80", 3)), "AP+A");
}

TEST(CryptoTest, Base64DecodeRoundTripsAndRefusesWhatIsNotBase64) {
  for (std::string_view bytes : {"", "f", "fo", "foo", "foobar", "sluice:svc-demo-token"}) {
    EXPECT_EQ(Base64Decode(Base64(bytes)), std::string(bytes));
  }
  EXPECT_EQ(Base64Decode("AP+A"), std::string("\x00\xff\x80", 3));
  EXPECT_FALSE(Base64Decode("Zg=").has_value());     // not a multiple of 4
  EXPECT_FALSE(Base64Decode("Z===").has_value());    // three pads
  EXPECT_FALSE(Base64Decode("Zm 9").has_value());    // whitespace
  EXPECT_FALSE(Base64Decode("Zm9v\n").has_value());  // a newline
  EXPECT_FALSE(Base64Decode("Z=g=").has_value());    // padding inside
}

}  // namespace
}  // namespace sluice
