// LuaScript: a Redis Lua script with its SHA-1, for EVALSHA.
//
// RedisConnection::RunScript() sends EVALSHA and, when the server answers
// NOSCRIPT (it restarted, or SCRIPT FLUSH ran), loads the body with SCRIPT
// LOAD and retries once; it also re-loads every script it has run whenever
// it reconnects. Immutable after construction; thread-safe to share. The
// scripts Sluice uses live in scripts.h, one static instance each.
#pragma once

#include <string>
#include <string_view>

namespace sluice::redis {

class LuaScript {
 public:
  LuaScript(std::string_view name, std::string_view body);

  const std::string& name() const { return name_; }  // for messages and metrics
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }  // 40 lowercase hex digits

 private:
  std::string name_;
  std::string body_;
  std::string sha1_;
};

}  // namespace sluice::redis
