// RedisReply: an owned copy of one Redis reply (RESP2), so that a reply can
// outlive the hiredis buffer it was parsed from and cross threads.
//
// Redis error replies ("-ERR ...", "-NOSCRIPT ...") are values of type
// kError, not failed Results: transport failures are reported separately by
// RedisConnection as a non-OK Status. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct redisReply;  // hiredis

namespace sluice::redis {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };

  Type type = Type::kNil;
  std::string str;                   // kString, kStatus, kError
  int64_t integer = 0;               // kInteger
  std::vector<RedisReply> elements;  // kArray

  // Deep copy of a hiredis reply. REQUIRES: r != nullptr.
  static RedisReply FromHiredis(const redisReply* r);

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  // Integer replies, or strings holding a decimal integer (Lua scripts may
  // return either); nullopt otherwise.
  std::optional<int64_t> AsInt() const;
  // "string [type]" for messages and test failures.
  std::string DebugString() const;
};

// OK with the reply, or kUnavailable for transport failures. A Redis error
// reply is turned into kInternal by ExpectNoError().
using ReplyResult = Result<RedisReply>;

// The reply as-is unless it is a Redis error reply, which becomes kInternal
// with `what` and the server's message; transport errors pass through.
ReplyResult ExpectNoError(ReplyResult reply, std::string_view what);

}  // namespace sluice::redis
