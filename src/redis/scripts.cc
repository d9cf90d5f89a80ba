#include "redis/scripts.h"

#include <string>

#include "redis/script_prelude.h"

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
-- Rate-limit state: one field per key of a hash (keys.h), the two TATs
-- (epoch µs) packed as little-endian doubles (16 bytes: no number
-- formatting or parsing, the costliest part of a limit check); older
-- "r_tat|t_tat" text is read too. rate_parse(value or false) -> r, t.
local function rate_parse(v)
  if not v then return 0, 0 end
  if #v == 16 then
    local r, t = struct.unpack('<d<d', v)
    return r, t
  end
  local r, t = string.match(v, '^(%d+)|(%d+)$')
  return tonumber(r) or 0, tonumber(t) or 0
end
-- A rate-limit hash also holds field RL_MARK (no key id: ids are never
-- empty) with a value longer than hash-max-listpack-value (64 by default),
-- so that Redis keeps the hash a hashtable. Without it, a hash of up to
-- hash-max-listpack-entries (512) key ids is a listpack, whose every field
-- lookup is a linear scan: with a few hundred keys that scan cost more than
-- the rest of an enqueue. A script that writes states writes the mark too
-- when it was missing (the hash is new, or was flushed).
local RL_MARK = ''
local RL_MARK_VALUE = 'sluice rate-limit states: key id -> two little-endian doubles; this field keeps the hash a hashtable'
-- The states of fields `names` of `hash`, in one HMGET: {r_tat, t_tat,
-- changed} each, in the order of `names`; and whether the mark is missing.
local function rate_read(hash, names)
  local out = {}
  if #names == 0 then return out, false end
  local values = redis.call('HMGET', hash, RL_MARK, unpack(names))
  for i = 1, #names do
    local r, t = rate_parse(values[i + 1])
    out[i] = {r, t, false}
  end
  return out, not values[1]
end
-- Writes `args` (key id, packed state, ...) to `hash` in one HSET, with
-- the mark when `unmarked`; nothing when `args` is empty.
local function rate_hset(hash, args, unmarked)
  if #args == 0 then return end
  if unmarked then
    args[#args + 1] = RL_MARK
    args[#args + 1] = RL_MARK_VALUE
  end
  redis.call('HSET', hash, unpack(args))
end
-- Writes the states rate_read() returned that changed (rate_hset()).
-- Returns how many it wrote.
local function rate_write(hash, names, states, unmarked)
  local args = {}
  for i = 1, #names do
    local st = states[i]
    if st[3] then
      args[#args + 1] = names[i]
      args[#args + 1] = struct.pack('<d<d', st[1], st[2])
    end
  end
  local written = #args / 2
  rate_hset(hash, args, unmarked)
  return written
end
-- Do both limits (rpm requests, tpm tokens; 0 = none) allow `cost` now?
-- Returns allowed and the TATs to store if it is consumed.
local function rate_try(r_tat, t_tat, rpm, tpm, cost, now)
  local r_ok, r_new, t_ok, t_new = true, r_tat, true, t_tat
  if rpm > 0 then r_ok, r_new = gcra(r_tat, now, rpm, 1) end
  if tpm > 0 then t_ok, t_new = gcra(t_tat, now, tpm, cost) end
  return r_ok and t_ok, r_new, t_new
end
-- Settles a tokens TAT by `delta` tokens (charged minus used: > 0 charges
-- more, capped at two windows ahead; < 0 gives back, never below now).
-- Returns the new TAT, or nil when there is nothing to change.
local function settle_tat(t_tat, delta, tpm, now)
  if tpm <= 0 or delta == 0 then return nil end
  if delta > 0 then
    return math.min(math.max(t_tat, now) + units_to_us(delta, tpm), now + 2 * W)
  elseif t_tat > now then
    return math.max(now, t_tat - units_to_us(-delta, tpm))
  end
  return nil
end
-- A queued request's member of its tier's ZSET (score 0: members sort as
-- strings) and its deadline key: its dispatch deadline as 16 decimal digits
-- (clamped to 0 .. 10^16 - 1), "|", its id (keys.h; RedisQueueClient writes
-- the same).
-- `deadline` is the entry's decimal text, used as text: a double would
-- round deadlines above 2^53 and could not hold the clamp exactly.
local function member(deadline, id)
  local key
  if string.byte(deadline, 1) == 45 then  -- '-'
    key = '0000000000000000'
  elseif #deadline > 16 then
    key = '9999999999999999'
  else
    key = string.rep('0', 16 - #deadline) .. deadline
  end
  return key .. '|' .. id, key
end
-- A queued entry's value: "tier|deadline_us|arrival_us|attempts|gateway_id|"
-- followed by the request's payload (request_codec.h). Returns the five
-- fields (tier and attempts as numbers) and the payload's first index.
local function parse_entry(v)
  local tier, dl, ar, att, gw, at = string.match(v, '^(%d+)|(%-?%d+)|(%-?%d+)|(%d+)|([^|]*)|()')
  return tonumber(tier), dl, ar, tonumber(att), gw, at
end
-- Pushes a dead letter (newest first), keeps the newest `cap` and counts
-- both in the stats hash (total, dropped).
local function dead_push(list, stats, cap, entry)
  local len = redis.call('LPUSH', list, entry)
  redis.call('HINCRBY', stats, 'total', 1)
  if len > cap then
    redis.call('HINCRBY', stats, 'dropped', len - cap)
    redis.call('LTRIM', list, 0, fmt(cap - 1))
  end
end
local function publish_groups(prefix, groups, order)
  local dropped = 0
  for _, gw in ipairs(order) do
    -- The brackets join the first and last items, so that the message is
    -- built once (Lua hashes every byte of every string it makes).
    local g = groups[gw]
    local n = #g
    g[1] = '[' .. g[1]
    g[n] = g[n] .. ']'
    if redis.call('PUBLISH', prefix .. gw .. '}', table.concat(g, ',')) == 0 then
      dropped = dropped + n
    end
  end
  return dropped
end
)lua";

constexpr const char* kDeadLetterPush = R"lua(
dead_push(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])
return 1
)lua";

constexpr const char* kDeadLetterRead = R"lua(
local limit = tonumber(ARGV[1])
local entries = {}
if limit > 0 then entries = redis.call('LRANGE', KEYS[1], 0, fmt(limit - 1)) end
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

LuaScript WithPrelude(const char* name, const char* body) {
  return LuaScript(name, std::string(kPrelude) + body);
}

SLUICE_SCRIPT(DeadLetterPush, kDeadLetterPush)
SLUICE_SCRIPT(DeadLetterRead, kDeadLetterRead)
SLUICE_SCRIPT(Heartbeat, kHeartbeat)
SLUICE_SCRIPT(Deregister, kDeregister)
SLUICE_SCRIPT(ReadWorkers, kReadWorkers)
SLUICE_SCRIPT(RateLimitCheck, kRateLimitCheck)
SLUICE_SCRIPT(RateLimitReconcile, kRateLimitReconcile)

}  // namespace sluice::redis::scripts
