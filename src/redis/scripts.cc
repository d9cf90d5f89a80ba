#include "redis/scripts.h"

#include <string>

#include "redis/script_prelude.h"

namespace sluice::redis::scripts {
namespace {

constexpr const char* kDeadLetterPush = R"lua(
dead_push(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])
return 1
)lua";

constexpr const char* kDeadLetterRead = R"lua(
local limit = tonumber(ARGV[1])
local entries = {}
if limit > 0 then entries = redis.call('LRANGE', KEYS[1], '0', fmt(limit - 1)) end
local st = redis.call('HMGET', KEYS[2], 'total', 'dropped')
return {redis.call('LLEN', KEYS[1]), tonumber(st[1]) or 0, tonumber(st[2]) or 0, entries}
)lua";

constexpr const char* kHeartbeat = R"lua(
local now = now_us()
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], fmt(now + tonumber(ARGV[3])), ARGV[1])
return now
)lua";

constexpr const char* kDeregister = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
)lua";

constexpr const char* kReadWorkers = R"lua(
local now = now_us()
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now), 'LIMIT', '0', '1000')
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('HDEL', KEYS[1], unpack(gone))
end
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. fmt(now), '+inf', 'LIMIT', '0', '10000')
local infos = {}
if #live > 0 then
  local values = redis.call('HMGET', KEYS[1], unpack(live))
  for i = 1, #values do
    if values[i] then infos[#infos + 1] = values[i] end
  end
end
return {now, infos}
)lua";

constexpr const char* kRateLimitCheck = R"lua(
local K = tonumber(ARGV[1])
local names = {}
for i = 1, K do names[i] = ARGV[1 + i] end
local n = tonumber(ARGV[K + 2])
local now = now_us()
local states, unmarked = rate_read(KEYS[1], names)
local reply = {now}
for j = 0, n - 1 do
  local b = K + 2 + j * 4
  local st = states[tonumber(ARGV[b + 1])]
  local r_tat, t_tat = st[1], st[2]
  local ok, r_new, t_new = rate_try(r_tat, t_tat, tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]),
                                    tonumber(ARGV[b + 4]), now)
  if ok then st[1], st[2], st[3] = r_new, t_new, true end
  reply[#reply + 1] = ok and 1 or 0
  reply[#reply + 1] = r_tat
  reply[#reply + 1] = t_tat
end
rate_write(KEYS[1], names, states, unmarked)
return reply
)lua";

constexpr const char* kRateLimitReconcile = R"lua(
local K = tonumber(ARGV[1])
local names = {}
for i = 1, K do names[i] = ARGV[1 + i] end
local n = tonumber(ARGV[K + 2])
local now = now_us()
local states, unmarked = rate_read(KEYS[1], names)
for j = 0, n - 1 do
  local b = K + 2 + j * 3
  local st = states[tonumber(ARGV[b + 1])]
  local t_new = settle_tat(st[2], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 2]), now)
  if t_new then st[2], st[3] = t_new, true end
end
return rate_write(KEYS[1], names, states, unmarked)
)lua";

}  // namespace

SLUICE_SCRIPT(DeadLetterPush, kDeadLetterPush)
SLUICE_SCRIPT(DeadLetterRead, kDeadLetterRead)
SLUICE_SCRIPT(Heartbeat, kHeartbeat)
SLUICE_SCRIPT(Deregister, kDeregister)
SLUICE_SCRIPT(ReadWorkers, kReadWorkers)
SLUICE_SCRIPT(RateLimitCheck, kRateLimitCheck)
SLUICE_SCRIPT(RateLimitReconcile, kRateLimitReconcile)

}  // namespace sluice::redis::scripts
