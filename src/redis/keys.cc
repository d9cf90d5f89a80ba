#include "redis/keys.h"

#include <algorithm>
#include <cstdio>

#include "redis/hash_slot.h"

namespace sluice::redis {

std::vector<std::string> KeySpace::Queues(std::string_view model, size_t tier_count) const {
  std::vector<std::string> keys;
  keys.reserve(tier_count);
  for (size_t t = 0; t < tier_count; ++t) keys.push_back(Queue(model, t));
  return keys;
}

std::string QueueMember(int64_t deadline_us, std::string_view id) {
  const int64_t key = std::clamp<int64_t>(deadline_us, 0, 9'999'999'999'999'999);
  char digits[24];
  const int n = std::snprintf(digits, sizeof digits, "%016lld|", static_cast<long long>(key));
  std::string member(digits, static_cast<size_t>(n));
  member.append(id);
  return member;
}

std::string QueueShard(std::string_view model, size_t shard) {
  if (shard == 0) return std::string(model);
  return std::string(model) + "|" + std::to_string(shard);
}

size_t ShardOfRequest(std::string_view id, size_t shards) {
  return shards <= 1 ? 0 : Crc16(id) % shards;
}

Status ValidateKeyPart(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > 200) {
    return InvalidArgument(std::string(what) + ": must be 1..200 bytes");
  }
  for (char c : name) {
    if (c == '{' || c == '}' || c == '|' || static_cast<unsigned char>(c) < 0x20) {
      return InvalidArgument(std::string(what) +
                             ": must not contain '{', '}', '|' or control "
                             "characters, got \"" +
                             std::string(name) + "\"");
    }
  }
  return Status::Ok();
}

}  // namespace sluice::redis
