#include "redis/lua_script.h"

#include <openssl/evp.h>

#include <cstdio>

namespace sluice::redis {

LuaScript::LuaScript(std::string_view name, std::string_view body) : name_(name), body_(body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(body_.data(), body_.size(), digest, &length, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    sha1_.push_back(kHex[digest[i] >> 4]);
    sha1_.push_back(kHex[digest[i] & 0xf]);
  }
}

}  // namespace sluice::redis
