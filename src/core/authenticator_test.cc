#include "core/authenticator.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Authenticator::Options Opts() {
  Authenticator::Options o;
  o.tiers = {TierPolicy{"free"}, TierPolicy{"paid"}};
  o.keys = {{"k-free", "free", ToHex(Sha256("secret-free"))},
            {"k-paid", "paid", ToHex(Sha256("secret-paid"))}};
  o.service_token_sha256 = ToHex(Sha256("svc"));
  return o;
}

TEST(AuthenticatorTest, ResolvesKeysToPrincipals) {
  auto auth = Authenticator::Create(Opts());
  ASSERT_TRUE(auth.ok());
  const Principal* p = (*auth)->Authenticate("secret-paid");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->key_id, "k-paid");
  EXPECT_EQ(p->tier, 1);
  EXPECT_EQ(p->tier_name, "paid");
  EXPECT_EQ((*auth)->Authenticate("secret-nope"), nullptr);
  EXPECT_EQ((*auth)->Authenticate(""), nullptr);
}

TEST(AuthenticatorTest, KeysTakeTheirTiersLimitsUnlessOverridden) {
  auto o = Opts();
  o.tiers[0].requests_per_minute = 60;
  o.tiers[0].tokens_per_minute = 1000;
  o.keys.push_back({"k-vip", "free", ToHex(Sha256("vip")), 600, -1});
  auto auth = Authenticator::Create(o);
  ASSERT_TRUE(auth.ok());
  const Principal* plain = (*auth)->Authenticate("secret-free");
  EXPECT_EQ(plain->rate_limit.requests_per_minute, 60);
  EXPECT_EQ(plain->rate_limit.tokens_per_minute, 1000);
  const Principal* vip = (*auth)->Authenticate("vip");
  EXPECT_EQ(vip->rate_limit.requests_per_minute, 600);
  EXPECT_EQ(vip->rate_limit.tokens_per_minute, 1000);
}

TEST(AuthenticatorTest, ServiceToken) {
  auto auth = Authenticator::Create(Opts());
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE((*auth)->IsServiceToken("svc"));
  EXPECT_FALSE((*auth)->IsServiceToken("secret-free"));
  EXPECT_FALSE((*auth)->IsServiceToken(""));
}

TEST(AuthenticatorTest, RejectsUnknownTierAndDuplicateSecrets) {
  auto o = Opts();
  o.keys.push_back({"k-x", "gold", ToHex(Sha256("x"))});
  EXPECT_FALSE(Authenticator::Create(o).ok());
  o = Opts();
  o.keys.push_back({"k-dup", "free", ToHex(Sha256("secret-free"))});
  EXPECT_FALSE(Authenticator::Create(o).ok());
}

TEST(BearerTokenTest, ParsesTheSchemeCaseInsensitively) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer  abc "), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(BasicPasswordTest, IsThePasswordOfBasicCredentials) {
  EXPECT_EQ(BasicPassword("Basic " + Base64("sluice:svc-demo-token")), "svc-demo-token");
  EXPECT_EQ(BasicPassword("basic " + Base64(":tok:en")), "tok:en");  // any user, ':' in it
  EXPECT_EQ(BasicPassword("Basic " + Base64("no-colon")), "");
  EXPECT_EQ(BasicPassword("Basic not*base64"), "");
  EXPECT_EQ(BasicPassword("Bearer " + Base64("a:b")), "");
  EXPECT_EQ(BasicPassword(""), "");
}

}  // namespace
}  // namespace sluice
