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
-- Rate-limit state: one string "r_tat|t_tat" (epoch µs) per key, expiring
-- once both buckets are full again. rate_parse(value or false) -> r, t.
local function rate_parse(v)
  if not v then return 0, 0 end
  local r, t = string.match(v, '^(%d+)|(%d+)$')
  return tonumber(r) or 0, tonumber(t) or 0
end
-- The states of KEYS[first .. first + count - 1], in one MGET.
local function rate_read_all(first, count)
  local keys = {}
  for i = 1, count do keys[i] = KEYS[first + i - 1] end
  local out = {}
  if count > 0 then
    local values = redis.call('MGET', unpack(keys))
    for i = 1, count do
      local r, t = rate_parse(values[i])
      out[i] = {r, t, false}
    end
  end
  return out
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
-- Stores both TATs; the key expires once both buckets are full again.
local function rate_store(key, r_new, t_new, now)
  local ttl_ms = math.floor((math.max(r_new, t_new) - now) / 1000) + 1
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', key, fmt(r_new) .. '|' .. fmt(t_new), 'PX', fmt(ttl_ms))
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
    local n = redis.call('PUBLISH', prefix .. gw .. '}', '[' .. table.concat(groups[gw], ',') .. ']')
    if n == 0 then dropped = dropped + #groups[gw] end
  end
  return dropped
end
)lua";

constexpr const char* kEnqueue = R"lua(
local T = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wake_cap = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local S = 9
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[2 + i]) end
-- Rate-limit key index -> {r_tat, t_tat, changed}: every key's state in one MGET.
local limits = rate_read_all(3 + T, #KEYS - 2 - T)
local adds = {}    -- tier -> {deadline, id, ...}
local entries = {} -- {id, entry, ...} for one HSET
local reply = {0, now}
local queued = 0
-- Ids already queued (or earlier in this batch) are duplicates.
local ids = {}
for j = 0, n - 1 do ids[j + 1] = ARGV[4 + j * S + 1] end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local taken = {}
for j = 1, n do
  if existing[j] then taken[ids[j]] = true end
end
for j = 0, n - 1 do
  local b = 4 + j * S
  local id, tier, tier_limit = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 4])
  local li = tonumber(ARGV[b + 5])
  local status, allowed, r_tat, t_tat = 0, 1, 0, 0
  local st, r_new, t_new
  if tier == nil or tier < 0 or tier >= T then
    status = 4
  else
    if li > 0 then
      st = limits[li]
      r_tat, t_tat = st[1], st[2]
      local ok
      ok, r_new, t_new = rate_try(r_tat, t_tat, tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7]),
                                  tonumber(ARGV[b + 8]), now)
      if not ok then status, allowed = 2, 0 end
    end
    if status == 0 and ((capacity > 0 and depth >= capacity) or
                        (tier_limit > 0 and depth >= tier_limit)) then
      status = 3
    end
    if status == 0 then
      if taken[id] then
        status = 1
      else
        taken[id] = true
        entries[#entries + 1] = id
        entries[#entries + 1] = ARGV[b + 9]
        if st then st[1], st[2], st[3] = r_new, t_new, true end
        local a = adds[tier]
        if a == nil then a = {}; adds[tier] = a end
        a[#a + 1] = ARGV[b + 3]
        a[#a + 1] = id
        depth = depth + 1
        queued = queued + 1
      end
    end
  end
  reply[#reply + 1] = status
  reply[#reply + 1] = allowed
  reply[#reply + 1] = r_tat
  reply[#reply + 1] = t_tat
end
if #entries > 0 then redis.call('HSET', KEYS[1], unpack(entries)) end
for tier, a in pairs(adds) do redis.call('ZADD', KEYS[3 + tier], unpack(a)) end
for li, st in pairs(limits) do
  if st[3] then rate_store(KEYS[2 + T + li], st[1], st[2], now) end
end
if queued > 0 then
  local tokens = {}
  for i = 1, math.min(queued, wake_cap) do tokens[i] = '1' end
  redis.call('LPUSH', KEYS[2], unpack(tokens))
  redis.call('LTRIM', KEYS[2], 0, fmt(wake_cap - 1))
end
reply[1] = depth
return reply
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
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[3 + i]) end

-- Oldest arrival and earliest deadline among the tier heads.
local oldest, earliest = nil, nil
for i = 1, T do
  local h = redis.call('ZRANGE', KEYS[3 + i], 0, 0, 'WITHSCORES')
  if #h > 0 then
    local d = tonumber(h[2])
    if earliest == nil or d < earliest then earliest = d end
    local v = redis.call('HGET', KEYS[1], h[1])
    if v then
      local _, _, ar = parse_entry(v)
      ar = tonumber(ar)
      if ar and (oldest == nil or ar < oldest) then oldest = ar end
    end
  end
end
-- Wake tokens are only ever left over when no claimer was blocked: with
-- nothing queued they are stale, and would make the next BLPOP spin.
if depth == 0 then
  redis.call('DEL', KEYS[3])
  return {now, 0, 0, 0, {}, {}}
end
if depth < min_batch then
  local wait = max_delay
  if oldest then wait = oldest + max_delay - now end
  if earliest and earliest - now < wait then wait = earliest - now end
  if wait > 0 then return {now, depth, wait, oldest or 0, {}, {}} end
end

-- Each tier's head is read in chunks of max_batch as the merge needs them
-- (the ZREMs come at the end, so offsets stay valid).
local chunk = max_batch
local buf, pos, read, full, removed = {}, {}, {}, {}, {}
for i = 1, T do
  buf[i] = redis.call('ZRANGE', KEYS[3 + i], 0, chunk - 1, 'WITHSCORES')
  pos[i], read[i], full[i], removed[i] = 1, #buf[i] / 2, #buf[i] == 2 * chunk, {}
end
local function refill(i)
  if pos[i] <= #buf[i] or not full[i] then return end
  buf[i] = redis.call('ZRANGE', KEYS[3 + i], read[i], read[i] + chunk - 1, 'WITHSCORES')
  pos[i], read[i], full[i] = 1, read[i] + #buf[i] / 2, #buf[i] == 2 * chunk
end
-- The next queued entry in queue order, or nil.
local function pick()
  local best, best_score = nil, nil
  for i = 1, T do
    refill(i)
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
  if best == nil then return nil end
  local id = buf[best][pos[best]]
  pos[best] = pos[best] + 2
  return best, id, best_score
end
local claimed, expired, leases = {}, {}, {}
local nclaimed, nexpired, nremoved = 0, 0, 0
local lease_until = fmt(now + lease)
-- Each round reads the entries of up to max_batch - nclaimed ids with one
-- HMGET; only entries past their deadline are parsed (attempts decide
-- whether they expired). Every id looked at is consumed, and at most
-- max_batch + max_expired are claimed or expired.
while nclaimed < max_batch and nexpired < max_expired do
  local tiers, ids, scores = {}, {}, {}
  for k = 1, max_batch - nclaimed do
    local t, id, s = pick()
    if t == nil then break end
    tiers[k], ids[k], scores[k] = t, id, s
  end
  if #ids == 0 then break end
  local values = redis.call('HMGET', KEYS[1], unpack(ids))
  for k = 1, #ids do
    if nexpired >= max_expired then break end
    local id, v = ids[k], values[k]
    removed[tiers[k]][#removed[tiers[k]] + 1] = id
    nremoved = nremoved + 1
    if v then
      local late = false
      if scores[k] <= now then
        local _, _, _, att = parse_entry(v)
        late = att == 0
      end
      leases[#leases + 1] = lease_until
      leases[#leases + 1] = id
      local out = late and expired or claimed
      out[#out + 1] = id
      out[#out + 1] = v
      if late then nexpired = nexpired + 1 else nclaimed = nclaimed + 1 end
    end
  end
end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
for i = 1, T do
  if #removed[i] > 0 then redis.call('ZREM', KEYS[3 + i], unpack(removed[i])) end
end
if depth - nremoved == 0 then redis.call('DEL', KEYS[3]) end
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
local S = 7
local n = (#ARGV - 2) / S
if n < 1 then return {0, 0, 0, 0} end
local ids = {}
for k = 1, n do ids[k] = ARGV[3 + (k - 1) * S] end
local leased = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local groups, order, done, unleased, seen = {}, {}, {}, {}, {}
local limits, now = {}, nil  -- rate-limit key index -> {r_tat, t_tat, changed}
local answered, stale, stale_at = 0, 0, {}
for k = 1, n do
  local b = 2 + (k - 1) * S
  local id = ids[k]
  local tier, gw = tonumber(ARGV[b + 3]), ARGV[b + 4]
  local live = false
  if not seen[id] then
    seen[id] = true
    if gw == '' or tier < 0 then  -- owner unknown to the caller: read the entry
      local v = redis.call('HGET', KEYS[1], id)
      tier, gw = nil, nil
      if v then
        local t, _, _, _, g = parse_entry(v)
        tier, gw = t, g
      end
    end
    if gw == nil then
      live = false
    elseif leased[k] then
      live = true
      unleased[#unleased + 1] = id
    elseif tier < T and redis.call('ZREM', KEYS[3 + tier], id) == 1 then
      live = true  -- answered while re-queued
    end
    if live then
      done[#done + 1] = id
      if groups[gw] == nil then
        groups[gw] = {}
        order[#order + 1] = gw
      end
      local g = groups[gw]
      g[#g + 1] = ARGV[b + 2]
      answered = answered + 1
      -- Settle the key's token charge with what was used.
      local li, tpm, delta = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
      if li > 0 and tpm > 0 and delta ~= 0 then
        if now == nil then
          now = now_us()
          limits = rate_read_all(3 + T, #KEYS - 2 - T)
        end
        local st = limits[li]
        local t_new = settle_tat(st[2], delta, tpm, now)
        if t_new then st[2], st[3] = t_new, true end
      end
    end
  end
  if not live then
    stale = stale + 1
    stale_at[#stale_at + 1] = k
  end
end
if #unleased > 0 then redis.call('ZREM', KEYS[2], unpack(unleased)) end
if #done > 0 then redis.call('HDEL', KEYS[1], unpack(done)) end
for li, st in pairs(limits) do
  if st[3] then rate_store(KEYS[2 + T + li], st[1], st[2], now) end
end
local dropped = publish_groups(prefix, groups, order)
return {answered, stale, dropped, #order, stale_at}
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
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now), 'LIMIT', 0, fmt(max_per_call))
local requeued, dead = 0, 0
local groups, order = {}, {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local v = redis.call('HGET', KEYS[1], id)
  local tier, dl, ar, att, gw, at
  if v then tier, dl, ar, att, gw, at = parse_entry(v) end
  if tier then
    att = att + 1
    if att <= max_retries and tier < T then
      redis.call('HSET', KEYS[1], id,
          tier .. '|' .. dl .. '|' .. ar .. '|' .. att .. '|' .. gw .. '|' .. string.sub(v, at))
      redis.call('ZADD', KEYS[4 + tier + 1], dl, id)
      requeued = requeued + 1
    else
      dead_push(KEYS[4], KEYS[5 + T], dead_cap, '{"id":' .. cjson.encode(id) .. ',"model":' ..
          cjson.encode(model) .. ',"gw":' .. cjson.encode(gw) .. ',"attempts":' .. att ..
          ',"reason":"lease_expired","at_us":' .. fmt(now) .. ',"request":' ..
          string.sub(v, at) .. '}')
      redis.call('HDEL', KEYS[1], id)
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
  end
end
if requeued > 0 then
  for i = 1, math.min(requeued, wake_cap) do redis.call('LPUSH', KEYS[3], '1') end
  redis.call('LTRIM', KEYS[3], 0, fmt(wake_cap - 1))
end
local dropped = publish_groups(prefix, groups, order)
return {requeued, dead, dropped, #ids}
)lua";

constexpr const char* kWithdraw = R"lua(
local T = tonumber(ARGV[1])
local removed = {}
for j = 2, #ARGV do
  local id = ARGV[j]
  local v = redis.call('HGET', KEYS[1], id)
  local tier
  if v then tier = parse_entry(v) end
  if tier and tier < T and redis.call('ZREM', KEYS[2 + tier], id) == 1 then
    redis.call('HDEL', KEYS[1], id)
    removed[#removed + 1] = id
  end
end
return removed
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
local n = tonumber(ARGV[1])
local now = now_us()
local states = rate_read_all(1, #KEYS)
local reply = {now}
for j = 0, n - 1 do
  local b = 1 + j * 4
  local st = states[tonumber(ARGV[b + 1])]
  local r_tat, t_tat = st[1], st[2]
  local ok, r_new, t_new = rate_try(r_tat, t_tat, tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]),
                                    tonumber(ARGV[b + 4]), now)
  if ok then st[1], st[2], st[3] = r_new, t_new, true end
  reply[#reply + 1] = ok and 1 or 0
  reply[#reply + 1] = r_tat
  reply[#reply + 1] = t_tat
end
for i, st in pairs(states) do
  if st[3] then rate_store(KEYS[i], st[1], st[2], now) end
end
return reply
)lua";

constexpr const char* kRateLimitReconcile = R"lua(
local n = tonumber(ARGV[1])
local now = now_us()
local states = rate_read_all(1, #KEYS)
for j = 0, n - 1 do
  local b = 1 + j * 3
  local st = states[tonumber(ARGV[b + 1])]
  local t_new = settle_tat(st[2], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 2]), now)
  if t_new then st[2], st[3] = t_new, true end
end
local changed = 0
for i, st in pairs(states) do
  if st[3] then
    rate_store(KEYS[i], st[1], st[2], now)
    changed = changed + 1
  end
end
return changed
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
SLUICE_SCRIPT(Withdraw, kWithdraw)
SLUICE_SCRIPT(DeadLetterPush, kDeadLetterPush)
SLUICE_SCRIPT(DeadLetterRead, kDeadLetterRead)
SLUICE_SCRIPT(Heartbeat, kHeartbeat)
SLUICE_SCRIPT(Deregister, kDeregister)
SLUICE_SCRIPT(ReadWorkers, kReadWorkers)
SLUICE_SCRIPT(RateLimitCheck, kRateLimitCheck)
SLUICE_SCRIPT(RateLimitReconcile, kRateLimitReconcile)

#undef SLUICE_SCRIPT

}  // namespace sluice::redis::scripts
