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
-- A decimal string as a number; one digit without tonumber(), which costs
-- more than the rest of a request's checks. nil when not a number.
local function small_int(s)
  if #s == 1 then
    local d = string.byte(s) - 48
    if d >= 0 and d <= 9 then return d end
    return nil
  end
  return tonumber(s)
end
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
-- Rate-limit state: one string per key, the two TATs (epoch µs) packed as
-- little-endian doubles (16 bytes: no number formatting or parsing, the
-- costliest part of a limit check); older "r_tat|t_tat" text is read too.
-- rate_parse(value or false) -> r, t.
local function rate_parse(v)
  if not v then return 0, 0 end
  if #v == 16 then
    local r, t = struct.unpack('<d<d', v)
    return r, t
  end
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
-- Time to live of a state, in ms, from a table of constants (formatting a
-- number costs more than the whole check): the smallest power of two >=
-- the time until both buckets are full again (at most 2 windows ahead).
local TTL_MS = {'1', '2', '4', '8', '16', '32', '64', '128', '256', '512', '1024', '2048',
                '4096', '8192', '16384', '32768', '65536', '131072', '262144'}
-- Stores both TATs; the key expires once both buckets are full again
-- (within a factor of two).
local function rate_store(key, r_new, t_new, now)
  local full_ms = (math.max(r_new, t_new) - now) / 1000
  local i, ms = 1, 1
  while ms < full_ms and i < #TTL_MS do
    i, ms = i + 1, ms * 2
  end
  redis.call('SET', key, struct.pack('<d<d', r_new, t_new), 'PX', TTL_MS[i])
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
local K = #KEYS - 2 - T
local S = 7
local H = 4 + 2 * K
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[2 + i]) end
-- Rate-limit key index -> {r_tat, t_tat, changed, rpm, tpm}: every key's
-- state in one MGET, its policy from the header.
local limits = rate_read_all(3 + T, K)
for i = 1, K do
  local st = limits[i]
  st[4], st[5] = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
end
local adds = {}    -- tier -> {deadline, id, ...}
local entries = {} -- {id, entry, ...} for one HSET
local reply = {0, now}
local queued = 0
-- Ids already queued (or earlier in this batch) are duplicates.
local ids = {}
for j = 0, n - 1 do ids[j + 1] = ARGV[H + j * S + 1] end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local taken = {}
for j = 1, n do
  if existing[j] then taken[ids[j]] = true end
end
for j = 0, n - 1 do
  local b = H + j * S
  local id, tier = ARGV[b + 1], small_int(ARGV[b + 2])
  local tier_limit, li = small_int(ARGV[b + 4]), small_int(ARGV[b + 5])
  local status, allowed, r_tat, t_tat = 0, 1, 0, 0
  local st, r_new, t_new
  if tier == nil or tier < 0 or tier >= T then
    status = 4
  else
    if li > 0 then
      st = limits[li]
      r_tat, t_tat = st[1], st[2]
      local cost = 0
      if st[5] > 0 then cost = tonumber(ARGV[b + 6]) end
      local ok
      ok, r_new, t_new = rate_try(r_tat, t_tat, st[4], st[5], cost, now)
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
        entries[#entries + 1] = ARGV[b + 7]
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
  if redis.call('LPUSH', KEYS[2], unpack(tokens)) > wake_cap then
    redis.call('LTRIM', KEYS[2], 0, fmt(wake_cap - 1))
  end
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
local batches = KEYS[4 + T]
local prio = {}
for i = 1, T do prio[i] = tonumber(ARGV[7 + i]) end
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[3 + i]) end
-- Wake tokens are only ever left over when no claimer was blocked: with
-- nothing queued they are stale, and would make the next BLPOP spin.
if depth == 0 then
  redis.call('DEL', KEYS[3])
  return {now, 0, 0, 0, {}, {}, ''}
end
local oldest = nil
if depth < min_batch then
  -- Wait-or-full: the oldest arrival and earliest deadline among the heads.
  local earliest = nil
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
  local wait = max_delay
  if oldest then wait = oldest + max_delay - now end
  if earliest and earliest - now < wait then wait = earliest - now end
  if wait > 0 then return {now, depth, wait, oldest or 0, {}, {}, ''} end
end

-- Each tier's head is read as the merge needs it: a share of the batch
-- first, then chunks of max_batch (the ZREMs come at the end, so offsets
-- stay valid). Scores (formatted by Redis, parsed here: the costly part)
-- are converted once.
local first_chunk = math.min(max_batch, math.ceil(max_batch / T) + 1)
local bid, bsc, pos, read, full, removed = {}, {}, {}, {}, {}, {}
local function load(i, from, chunk)
  local r = redis.call('ZRANGE', KEYS[3 + i], from, from + chunk - 1, 'WITHSCORES')
  local ids, sc = {}, {}
  for j = 1, #r, 2 do
    ids[#ids + 1] = r[j]
    sc[#sc + 1] = tonumber(r[j + 1])
  end
  bid[i], bsc[i], pos[i], read[i], full[i] = ids, sc, 1, from + #ids, #ids == chunk
end
for i = 1, T do
  load(i, 0, first_chunk)
  removed[i] = {}
end
-- The next queued entry in queue order, or nil.
local function pick()
  local best, best_score = nil, nil
  for i = 1, T do
    if pos[i] > #bid[i] and full[i] then load(i, read[i], max_batch) end
    if pos[i] <= #bid[i] then
      local s = bsc[i][pos[i]]
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
  local id = bid[best][pos[best]]
  pos[best] = pos[best] + 1
  return best, id, best_score
end
local claimed, expired, held = {}, {}, {}
local nclaimed, nexpired, nremoved = 0, 0, 0
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
      held[#held + 1] = id
      local out = late and expired or claimed
      out[#out + 1] = id
      out[#out + 1] = v
      if late then nexpired = nexpired + 1 else nclaimed = nclaimed + 1 end
    end
  end
end
-- One lease for the whole batch: its expiry in the leases ZSET, its ids
-- and unanswered count in the batches hash.
local lease_id = ''
if #held > 0 then
  lease_id = fmt(now) .. '/' .. held[1]
  redis.call('ZADD', KEYS[2], fmt(now + lease), lease_id)
  redis.call('HSET', batches, lease_id, fmt(#held), lease_id .. '|ids', table.concat(held, '|'))
end
for i = 1, T do
  if #removed[i] > 0 then redis.call('ZREM', KEYS[3 + i], unpack(removed[i])) end
end
if depth - nremoved == 0 then redis.call('DEL', KEYS[3]) end
return {now, depth - nremoved, 0, oldest or 0, claimed, expired, lease_id}
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
local batches = KEYS[3 + T]
local S = 8
local n = (#ARGV - 2) / S
if n < 1 then return {0, 0, 0, 0, {}} end
-- Leases named by the results: held (still in the leases ZSET) or not, and
-- how many of their requests this call answers.
local held, count, held_order = {}, {}, {}
local function is_held(l)
  local h = held[l]
  if h == nil then
    h = l ~= '' and redis.call('ZSCORE', KEYS[2], l) ~= false
    held[l] = h
    if h then
      count[l] = 0
      held_order[#held_order + 1] = l
    end
  end
  return h
end
local groups, order, seen = {}, {}, {}
local limits, now = {}, nil  -- rate-limit key index -> {r_tat, t_tat, changed}
local answered, stale, stale_at = 0, 0, {}
for k = 1, n do
  local b = 2 + (k - 1) * S
  local id = ARGV[b + 1]
  local tier, gw, l = small_int(ARGV[b + 3]), ARGV[b + 4], ARGV[b + 5]
  local in_lease = is_held(l)
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
    -- The entry exists until the first answer: that one wins.
    if gw ~= nil and redis.call('HDEL', KEYS[1], id) == 1 then
      live = true
      -- Only a first answer counts toward its lease, so that a call sent
      -- again (its reply was lost) cannot release the lease early.
      if in_lease then
        count[l] = count[l] + 1
      elseif tier < T then
        -- Its lease was reaped: it may wait re-queued.
        redis.call('ZREM', KEYS[3 + tier], id)
      end
    end
    if live then
      if groups[gw] == nil then
        groups[gw] = {}
        order[#order + 1] = gw
      end
      local g = groups[gw]
      g[#g + 1] = ARGV[b + 2]
      answered = answered + 1
      -- Settle the key's token charge with what was used.
      local li = small_int(ARGV[b + 6])
      local tpm, delta = 0, 0
      if li > 0 then tpm, delta = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8]) end
      if li > 0 and tpm > 0 and delta ~= 0 then
        if now == nil then
          now = now_us()
          limits = rate_read_all(4 + T, #KEYS - 3 - T)
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
-- A lease whose every request has been answered is released. (One whose
-- requests were answered by someone else, or could not be read, runs out
-- and is reaped with nothing left to re-queue.)
for _, l in ipairs(held_order) do
  if count[l] > 0 and redis.call('HINCRBY', batches, l, -count[l]) <= 0 then
    redis.call('ZREM', KEYS[2], l)
    redis.call('HDEL', batches, l, l .. '|ids')
  end
end
for li, st in pairs(limits) do
  if st[3] then rate_store(KEYS[3 + T + li], st[1], st[2], now) end
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
local batches = KEYS[6 + T]
local now = now_us()
local leases = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now), 'LIMIT', 0, fmt(max_per_call))
local requeued, dead, examined, handled = 0, 0, 0, 0
local groups, order = {}, {}
for _, l in ipairs(leases) do
  -- Whole leases, until max_per_call requests have been looked at.
  if examined >= max_per_call then break end
  handled = handled + 1
  redis.call('ZREM', KEYS[2], l)
  -- A lease without an id list is one request's, as leased before leases
  -- were per batch.
  local list = redis.call('HGET', batches, l .. '|ids') or l
  redis.call('HDEL', batches, l, l .. '|ids')
  -- The lease's ids still unanswered (an entry exists until the answer).
  for id in string.gmatch(list, '[^|]+') do
    examined = examined + 1
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
    elseif v then
      redis.call('HDEL', KEYS[1], id)
    end
  end
end
if requeued > 0 then
  for i = 1, math.min(requeued, wake_cap) do redis.call('LPUSH', KEYS[3], '1') end
  redis.call('LTRIM', KEYS[3], 0, fmt(wake_cap - 1))
end
local dropped = publish_groups(prefix, groups, order)
return {requeued, dead, dropped, handled}
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
