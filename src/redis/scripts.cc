#include "redis/scripts.h"

#include <string>

namespace sluice::redis::scripts {
namespace {

// Helpers shared by every script (prepended to each body).
constexpr const char* kPrelude = R"lua(
local W = 60000000
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%d', n) end
-- floor(units * W / limit) as in gcra.h (in µs), capped at 4 windows.
local function units_to_us(units, limit)
  local a = units * W
  local q = math.floor(a / limit)
  if q * limit > a then q = q - 1 end
  if (q + 1) * limit <= a then q = q + 1 end
  if q > 4 * W then q = 4 * W end
  return q
end
-- GCRA: does `cost` fit now? Returns allowed, the TAT to store.
local function gcra(tat, now, limit, cost)
  if cost > limit then return false, tat end
  local new_tat = math.max(tat, now) + units_to_us(cost, limit)
  if new_tat - W <= now then return true, new_tat end
  return false, tat
end
local function rate_check(key, rpm, tpm, cost, now)
  local st = redis.call('HMGET', key, 'r', 't')
  local r_tat = tonumber(st[1]) or 0
  local t_tat = tonumber(st[2]) or 0
  local r_ok, r_new, t_ok, t_new = true, r_tat, true, t_tat
  if rpm > 0 then r_ok, r_new = gcra(r_tat, now, rpm, 1) end
  if tpm > 0 then t_ok, t_new = gcra(t_tat, now, tpm, cost) end
  return r_ok and t_ok, r_tat, t_tat, r_new, t_new
end
-- Stores both TATs; the hash expires once both buckets are full again.
local function rate_store(key, r_new, t_new, now)
  redis.call('HSET', key, 'r', fmt(r_new), 't', fmt(t_new))
  local ttl_ms = math.floor((math.max(r_new, t_new) - now) / 1000) + 1
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('PEXPIRE', key, fmt(ttl_ms))
end
-- meta: "tier|deadline_us|arrival_us|attempts|gateway_id"
local function parse_meta(m)
  local tier, dl, ar, att, gw = string.match(m, '^(%d+)|(%-?%d+)|(%-?%d+)|(%d+)|(.*)$')
  return tonumber(tier), dl, ar, tonumber(att), gw
end
local function publish_groups(prefix, groups, order)
  local dropped = 0
  for _, gw in ipairs(order) do
    local n = redis.call('PUBLISH', prefix .. gw .. '}', '[' .. table.concat(groups[gw], ',') .. ']')
    if n == 0 then dropped = dropped + #groups[gw] end
  end
  return dropped
end
)lua";

constexpr const char* kEnqueue = R"lua(
local T = tonumber(ARGV[1])
local id = ARGV[2]
local tier = tonumber(ARGV[3])
local capacity = tonumber(ARGV[8])
local tier_limit = tonumber(ARGV[9])
local wake_cap = tonumber(ARGV[10])
if tier == nil or tier < 0 or tier >= T then return redis.error_reply('ERR sluice: bad tier') end
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[3 + i]) end
if redis.call('HEXISTS', KEYS[1], id) == 1 then return {1, depth, now, 1, 0, 0} end
local rl = KEYS[4 + T]
local allowed, r_tat, t_tat, r_new, t_new = true, 0, 0, 0, 0
if rl then
  allowed, r_tat, t_tat, r_new, t_new =
      rate_check(rl, tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), now)
end
local status = 0
if not allowed then
  status = 2
elseif (capacity > 0 and depth >= capacity) or (tier_limit > 0 and depth >= tier_limit) then
  status = 3
else
  if rl then rate_store(rl, r_new, t_new, now) end
  redis.call('HSET', KEYS[1], id, ARGV[7])
  redis.call('HSET', KEYS[2], id, ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|0|' .. ARGV[6])
  redis.call('ZADD', KEYS[4 + tier], ARGV[4], id)
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, fmt(wake_cap - 1))
  depth = depth + 1
end
return {status, depth, now, allowed and 1 or 0, r_tat, t_tat}
)lua";

constexpr const char* kClaim = R"lua(
local T = tonumber(ARGV[1])
local max_batch = tonumber(ARGV[2])
local min_batch = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local strict = ARGV[6] == '1'
local max_expired = tonumber(ARGV[7])
local prio = {}
for i = 1, T do prio[i] = tonumber(ARGV[7 + i]) end
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[4 + i]) end

-- Oldest arrival and earliest deadline among the tier heads.
local oldest, earliest = nil, nil
for i = 1, T do
  local h = redis.call('ZRANGE', KEYS[4 + i], 0, 0, 'WITHSCORES')
  if #h > 0 then
    local d = tonumber(h[2])
    if earliest == nil or d < earliest then earliest = d end
    local m = redis.call('HGET', KEYS[2], h[1])
    if m then
      local _, _, ar = parse_meta(m)
      ar = tonumber(ar)
      if ar and (oldest == nil or ar < oldest) then oldest = ar end
    end
  end
end
-- Wake tokens are only ever left over when no claimer was blocked: with
-- nothing queued they are stale, and would make the next BLPOP spin.
if depth == 0 then
  redis.call('DEL', KEYS[4])
  return {now, 0, 0, 0, {}, {}}
end
if depth < min_batch then
  local wait = max_delay
  if oldest then wait = oldest + max_delay - now end
  if earliest and earliest - now < wait then wait = earliest - now end
  if wait > 0 then return {now, depth, wait, oldest or 0, {}, {}} end
end

local fetch = max_batch + max_expired
local buf, pos, removed = {}, {}, {}
for i = 1, T do
  buf[i] = redis.call('ZRANGE', KEYS[4 + i], 0, fetch - 1, 'WITHSCORES')
  pos[i] = 1
  removed[i] = {}
end
local claimed, expired = {}, {}
local nclaimed, nexpired, nremoved = 0, 0, 0
local lease_until = fmt(now + lease)
-- Each pass consumes one buffered entry: at most T * fetch passes.
while nclaimed < max_batch and nexpired < max_expired do
  local best, best_score = nil, nil
  for i = 1, T do
    if pos[i] <= #buf[i] then
      local s = tonumber(buf[i][pos[i] + 1])
      if best == nil then
        best, best_score = i, s
      elseif strict then
        if prio[i] > prio[best] then best, best_score = i, s end
      elseif s < best_score or (s == best_score and prio[i] > prio[best]) then
        best, best_score = i, s
      end
    end
  end
  if best == nil then break end
  local id = buf[best][pos[best]]
  pos[best] = pos[best] + 2
  removed[best][#removed[best] + 1] = id
  nremoved = nremoved + 1
  local payload = redis.call('HGET', KEYS[1], id)
  local m = redis.call('HGET', KEYS[2], id)
  if payload and m then
    local _, _, _, att = parse_meta(m)
    redis.call('ZADD', KEYS[3], lease_until, id)
    if best_score <= now and tonumber(att) == 0 then
      expired[#expired + 1] = id
      expired[#expired + 1] = payload
      expired[#expired + 1] = att
      nexpired = nexpired + 1
    else
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = payload
      claimed[#claimed + 1] = att
      nclaimed = nclaimed + 1
    end
  end
end
for i = 1, T do
  if #removed[i] > 0 then redis.call('ZREM', KEYS[4 + i], unpack(removed[i])) end
end
if depth - nremoved == 0 then redis.call('DEL', KEYS[4]) end
return {now, depth - nremoved, 0, oldest or 0, claimed, expired}
)lua";

constexpr const char* kRenew = R"lua(
local until_us = fmt(now_us() + tonumber(ARGV[1]))
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = until_us
  args[#args + 1] = ARGV[i]
end
if #args == 0 then return 0 end
return redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args))
)lua";

constexpr const char* kComplete = R"lua(
local T = tonumber(ARGV[1])
local prefix = ARGV[2]
local groups, order = {}, {}
local answered, stale = 0, 0
for j = 3, #ARGV - 1, 2 do
  local id = ARGV[j]
  local live = false
  local m = redis.call('HGET', KEYS[2], id)
  if m then
    local tier, _, _, _, gw = parse_meta(m)
    if redis.call('ZREM', KEYS[3], id) == 1 then
      live = true
    elseif tier < T and redis.call('ZREM', KEYS[4 + tier], id) == 1 then
      live = true
    end
    if live then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      if groups[gw] == nil then
        groups[gw] = {}
        order[#order + 1] = gw
      end
      local g = groups[gw]
      g[#g + 1] = ARGV[j + 1]
      answered = answered + 1
    end
  end
  if not live then stale = stale + 1 end
end
local dropped = publish_groups(prefix, groups, order)
return {answered, stale, dropped, #order}
)lua";

constexpr const char* kReap = R"lua(
local T = tonumber(ARGV[1])
local prefix = ARGV[2]
local max_retries = tonumber(ARGV[3])
local max_per_call = tonumber(ARGV[4])
local dead_cap = tonumber(ARGV[5])
local wake_cap = tonumber(ARGV[6])
local model = ARGV[7]
local code = ARGV[8]
local message = ARGV[9]
local now = now_us()
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', fmt(now), 'LIMIT', 0, fmt(max_per_call))
local requeued, dead = 0, 0
local groups, order = {}, {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[3], id)
  local m = redis.call('HGET', KEYS[2], id)
  local payload = redis.call('HGET', KEYS[1], id)
  if m and payload then
    local tier, dl, ar, att, gw = parse_meta(m)
    att = att + 1
    if att <= max_retries and tier < T then
      redis.call('HSET', KEYS[2], id, tier .. '|' .. dl .. '|' .. ar .. '|' .. att .. '|' .. gw)
      redis.call('ZADD', KEYS[5 + tier + 1], dl, id)
      requeued = requeued + 1
    else
      redis.call('LPUSH', KEYS[5], '{"id":' .. cjson.encode(id) .. ',"model":' ..
          cjson.encode(model) .. ',"gw":' .. cjson.encode(gw) .. ',"attempts":' .. att ..
          ',"reason":"lease_expired","at_us":' .. fmt(now) .. ',"request":' .. payload .. '}')
      redis.call('LTRIM', KEYS[5], 0, fmt(dead_cap - 1))
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      if groups[gw] == nil then
        groups[gw] = {}
        order[#order + 1] = gw
      end
      local g = groups[gw]
      g[#g + 1] = '{"id":' .. cjson.encode(id) .. ',"c":' .. cjson.encode(code) .. ',"msg":' ..
          cjson.encode(message) .. ',"r":"worker_lost"}'
      dead = dead + 1
    end
  else
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  end
end
if requeued > 0 then
  for i = 1, math.min(requeued, wake_cap) do redis.call('LPUSH', KEYS[4], '1') end
  redis.call('LTRIM', KEYS[4], 0, fmt(wake_cap - 1))
end
local dropped = publish_groups(prefix, groups, order)
return {requeued, dead, dropped, #ids}
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
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now), 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('HDEL', KEYS[1], unpack(gone))
end
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. fmt(now), '+inf', 'LIMIT', 0, 10000)
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
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local now = now_us()
local allowed, r_tat, t_tat, r_new, t_new = rate_check(KEYS[1], rpm, tpm, tonumber(ARGV[3]), now)
if allowed then rate_store(KEYS[1], r_new, t_new, now) end
return {allowed and 1 or 0, now, r_tat, t_tat}
)lua";

constexpr const char* kRateLimitReconcile = R"lua(
local tpm = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
if tpm <= 0 or delta == 0 then return 0 end
local now = now_us()
local st = redis.call('HMGET', KEYS[1], 'r', 't')
local r_tat = tonumber(st[1]) or 0
local t_tat = tonumber(st[2]) or 0
local new_tat
if delta > 0 then
  new_tat = math.min(math.max(t_tat, now) + units_to_us(delta, tpm), now + 2 * W)
elseif t_tat > now then
  new_tat = math.max(now, t_tat - units_to_us(-delta, tpm))
else
  return 0
end
rate_store(KEYS[1], r_tat, new_tat, now)
return 1
)lua";

LuaScript Make(const char* name, const char* body) {
  return LuaScript(name, std::string(kPrelude) + body);
}

}  // namespace

// Function-local statics: built on first use, never destroyed (they may be
// used by threads still running during exit).
#define SLUICE_SCRIPT(Fn, body)                                      \
  const LuaScript& Fn() {                                            \
    static const LuaScript* script = new LuaScript(Make(#Fn, body)); \
    return *script;                                                  \
  }

SLUICE_SCRIPT(Enqueue, kEnqueue)
SLUICE_SCRIPT(Claim, kClaim)
SLUICE_SCRIPT(Complete, kComplete)
SLUICE_SCRIPT(Renew, kRenew)
SLUICE_SCRIPT(Reap, kReap)
SLUICE_SCRIPT(Heartbeat, kHeartbeat)
SLUICE_SCRIPT(Deregister, kDeregister)
SLUICE_SCRIPT(ReadWorkers, kReadWorkers)
SLUICE_SCRIPT(RateLimitCheck, kRateLimitCheck)
SLUICE_SCRIPT(RateLimitReconcile, kRateLimitReconcile)

#undef SLUICE_SCRIPT

}  // namespace sluice::redis::scripts
