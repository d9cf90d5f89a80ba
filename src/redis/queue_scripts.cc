// The queue's scripts (scripts.h): enqueue, claim, renew, reap and
// withdraw; complete is in complete_script.cc.
#include "redis/script_prelude.h"
#include "redis/scripts.h"

namespace sluice::redis::scripts {
namespace {

constexpr const char* kEnqueue = R"lua(
-- The header in one argument (one unpack, where five tonumber() calls
-- would each run strtod), K key ids, then the items' numbers packed in
-- `meta`, then per item its member and entry (struct.unpack reads a
-- packed record with one call, where separate strings cost one each).
-- Tables are few and made only when needed: every table costs an
-- allocation, its growth a rehash at each power of two, and garbage.
local T, capacity, wake_cap, n, K = struct.unpack('<ddddd', ARGV[1])
local meta = ARGV[2 + K]
local H = 2 + K
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[2 + i]) end
-- Rate-limit key index i -> its TATs (S[2i - 1] requests, S[2i] tokens)
-- and whether they changed (CH): every key's state in one HMGET. The GCRA
-- inlined below with its increments computed by the caller, since a Lua
-- call or table per key costs more than the arithmetic (rate_try() is the
-- reference). The states as read are returned packed as stored (16 bytes
-- per key), so that the caller can replay each item's check (scripts.h).
local S, CH, values = {}, {}, nil
-- unmarked: the hash lacks RL_MARK (as rate_read() reports it).
local unmarked = false
if K > 0 then
  values = redis.call('HMGET', KEYS[3 + T], RL_MARK, unpack(ARGV, 2, 1 + K))
  unmarked = not values[1]
  for i = 1, K do
    local v = values[i + 1]
    if v and #v == 16 then
      S[2 * i - 1], S[2 * i] = struct.unpack('<d<d', v)
    else
      local r, t = rate_parse(v)
      S[2 * i - 1], S[2 * i] = r, t
      values[i + 1] = struct.pack('<d<d', r, t)
    end
  end
end
local sub, unpack_item = string.sub, struct.unpack  -- per item: no lookups
-- Tier t + 1 -> {'0', member, ...} for one ZADD and its length (made when
-- the tier's first item is queued).
local adds, nadds = {}, {}
local entries = {} -- {id, entry, ...} for one HSET
local statuses = nil  -- one digit per item, made at the first refusal
local queued, nentries = 0, 0
-- Ids already queued are duplicates (the caller sends a call's ids
-- distinct). An item's member is its deadline key, "|", its id (member() in
-- the prelude).
local ids = {}
for j = 0, n - 1 do ids[j + 1] = sub(ARGV[H + 2 * j + 1], 18) end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local at = 1
for j = 0, n - 1 do
  local b = H + 2 * j
  local tier, tier_limit, li, rinc, tinc
  tier, tier_limit, li, rinc, tinc, at = unpack_item('<BI4I4dd', meta, at)
  local status, r_new, t_new = 0, 0, 0
  if tier >= T then
    status = 4
  else
    if li > 0 then
      -- gcra() for the request and the token limit, as rate_try(); an
      -- increment of +inf never fits.
      local r_tat, t_tat = S[2 * li - 1], S[2 * li]
      r_new, t_new = r_tat, t_tat
      if rinc >= 0 then
        r_new = (r_tat > now and r_tat or now) + rinc
        if r_new - W > now then status = 2 end
      end
      if tinc >= 0 then
        t_new = (t_tat > now and t_tat or now) + tinc
        if t_new - W > now then status = 2 end
      end
    end
    if status == 0 and ((capacity > 0 and depth >= capacity) or
                        (tier_limit > 0 and depth >= tier_limit)) then
      status = 3
    end
    if status == 0 then
      if existing[j + 1] then
        status = 1
      else
        entries[nentries + 1] = ids[j + 1]
        entries[nentries + 2] = ARGV[b + 2]
        nentries = nentries + 2
        if li > 0 then S[2 * li - 1], S[2 * li], CH[li] = r_new, t_new, true end
        local a = adds[tier + 1]
        if a == nil then
          a = {}
          adds[tier + 1], nadds[tier + 1] = a, 0
        end
        local c = nadds[tier + 1]
        a[c + 1], a[c + 2], nadds[tier + 1] = '0', ARGV[b + 1], c + 2
        depth = depth + 1
        queued = queued + 1
      end
    end
  end
  if status ~= 0 and statuses == nil then
    statuses = {}
    for k = 1, j do statuses[k] = '0' end
  end
  if statuses then statuses[j + 1] = string.char(48 + status) end
end
if nentries > 0 then redis.call('HSET', KEYS[1], unpack(entries)) end
for t = 1, T do
  if adds[t] then redis.call('ZADD', KEYS[2 + t], unpack(adds[t])) end
end
local changed = {}
for i = 1, K do
  if CH[i] then
    changed[#changed + 1] = ARGV[1 + i]
    changed[#changed + 1] = struct.pack('<d<d', S[2 * i - 1], S[2 * i])
  end
end
rate_hset(KEYS[3 + T], changed, unmarked)
if queued > 0 then
  local len
  if queued == 1 or wake_cap == 1 then
    len = redis.call('LPUSH', KEYS[2], '1')
  else
    local tokens = {}
    for i = 1, math.min(queued, wake_cap) do tokens[i] = '1' end
    len = redis.call('LPUSH', KEYS[2], unpack(tokens))
  end
  if len > wake_cap then redis.call('LTRIM', KEYS[2], '0', fmt(wake_cap - 1)) end
end
return {depth, now, statuses and table.concat(statuses) or '',
        K > 0 and table.concat(values, '', 2, K + 1) or ''}
)lua";

constexpr const char* kClaim = R"lua(
-- The header, packed (one unpack, where each tonumber() runs strtod), then
-- each tier's priority.
local T, max_batch, min_batch, max_delay, lease, strict, max_expired, inline_max, horizon,
    fill_to, p = struct.unpack('<dddddddddd', ARGV[1])
strict = strict == 1
local prio = {struct.unpack('<' .. string.rep('d', T), ARGV[1], p)}  -- (and p after them)
local batches = KEYS[4 + T]
local now = now_us()
local depth = 0
for i = 1, T do depth = depth + redis.call('ZCARD', KEYS[3 + i]) end
-- Wake tokens are only ever left over when no claimer was blocked: with
-- nothing queued they are stale, and would make the next BLPOP spin.
if depth == 0 then
  redis.call('DEL', KEYS[3])
  return {now, 0, 0, 0, '', {}, {}, ''}
end
local oldest = nil
if depth < min_batch then
  -- Wait-or-full: the oldest arrival and earliest deadline among the heads.
  local earliest = nil
  for i = 1, T do
    local h = redis.call('ZRANGE', KEYS[3 + i], '0', '0')
    if #h > 0 then
      local d = tonumber(string.sub(h[1], 1, 16))
      if earliest == nil or d < earliest then earliest = d end
      local v = redis.call('HGET', KEYS[1], string.sub(h[1], 18))
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
  if wait > 0 then return {now, depth, wait, oldest or 0, '', {}, {}, ''} end
end

-- Each tier's head is read as the merge needs it: a share of the batch
-- first, then chunks of max_batch (the removal comes at the end, so offsets
-- stay valid). Members, not scores: a member starts with its deadline key.
-- Tier i: its members read so far bm[i], the next one's position pos[i],
-- whether the last read was full (more may follow), and the next one's
-- deadline key hk[i] (false: none left; nil: the next chunk is to be read,
-- which the merge does when it looks at the tier again).
local sub = string.sub
local first_chunk = math.min(max_batch, math.ceil(max_batch / T) + 1)
local bm, pos, read, full, hk, nrem = {}, {}, {}, {}, {}, {}
local function load(i, from, chunk)
  local r = redis.call('ZRANGE', KEYS[3 + i], fmt(from), fmt(from + chunk - 1))
  bm[i], pos[i], read[i], full[i] = r, 1, from + #r, #r == chunk
  hk[i] = r[1] and sub(r[1], 1, 16) or false
end
-- Moves tier i past its next member.
local function advance(i)
  local p = pos[i] + 1
  local m = bm[i][p]
  pos[i] = p
  if m then
    hk[i] = sub(m, 1, 16)
  elseif full[i] then
    hk[i] = nil
  else
    hk[i] = false
  end
end
for i = 1, T do
  load(i, 0, first_chunk)
  nrem[i] = 0
end
local now_key = string.format('%016d', now)
-- Async fill: a member due later than now + horizon is asynchronous work
-- (no synchronous budget reaches that far); one is taken only while fewer
-- than fill_to are claimed. A tier whose head is such a member past that
-- is done for this claim (in EDF order every later head is too).
local async_key = horizon > 0 and string.format('%016d', now + horizon) or nil
-- held: every id leased, in order (claimed and expired); inline: position
-- in held -> entry, for the claimed ones the script read.
local held, inline, expired = {}, {}, {}
local nheld, nclaimed, nexpired, nremoved = 0, 0, 0, 0
-- Each round takes up to max_batch - nclaimed ids in queue order (ties of
-- deadline key by tier priority, or tiers by priority when strict). A
-- round of at most inline_max ids reads their entries (one HMGET) and
-- returns them; a larger one reads only those past their dispatch
-- deadline, whose attempts decide whether they expired, and leaves the
-- caller to read the others outside Lua (scripts.h). Every id a round
-- takes is consumed, unless max_expired ends it; at most max_batch +
-- max_expired are claimed or expired.
while nclaimed < max_batch and nexpired < max_expired do
  local rt, ri, n = {}, {}, 0  -- the round's tiers and ids
  local due, ndue, is_due = {}, 0, {}
  for _ = 1, max_batch - nclaimed do
    local best, bk
    repeat
      best, bk = nil, nil
      for i = 1, T do
        local key = hk[i]
        if key == nil then
          load(i, read[i], max_batch)
          key = hk[i]
        end
        if key then
          if best == nil then
            best, bk = i, key
          elseif strict then
            if prio[i] > prio[best] then best, bk = i, key end
          elseif key < bk or (key == bk and prio[i] > prio[best]) then
            best, bk = i, key
          end
        end
      end
      local filled = best ~= nil and async_key ~= nil and bk > async_key and nclaimed + n >= fill_to
      if filled then hk[best] = false end
    until not filled
    if best == nil then break end
    local m = bm[best][pos[best]]
    advance(best)
    n = n + 1
    local id = sub(m, 18)
    rt[n], ri[n] = best, id
    if bk <= now_key then
      ndue = ndue + 1
      due[ndue], is_due[n] = id, true
    end
  end
  if n == 0 then break end
  local whole = n <= inline_max
  if ndue == 0 and not whole then
    -- The common case: nothing to read, every id is claimed.
    for k = 1, n do
      local t = rt[k]
      nrem[t] = nrem[t] + 1
      held[nheld + k] = ri[k]
    end
    nheld, nclaimed, nremoved = nheld + n, nclaimed + n, nremoved + n
  else
    local want = whole and ri or due
    local entry = {}
    local values = redis.call('HMGET', KEYS[1], unpack(want))
    for j = 1, #want do entry[want[j]] = values[j] end
    for k = 1, n do
      if nexpired >= max_expired then break end
      local id, t = ri[k], rt[k]
      nrem[t] = nrem[t] + 1
      nremoved = nremoved + 1
      local v = entry[id]  -- false: gone; nil: not read (the caller reads it)
      local late = false
      if v and is_due[k] then
        local _, _, _, att = parse_entry(v)
        late = att == 0
      end
      if late then
        nheld = nheld + 1
        held[nheld] = id
        expired[#expired + 1] = id
        expired[#expired + 1] = v
        nexpired = nexpired + 1
      elseif v ~= false then
        nheld = nheld + 1
        held[nheld] = id
        nclaimed = nclaimed + 1
        if v then
          inline[#inline + 1] = nheld
          inline[#inline + 1] = v
        end
      end
    end
  end
end
-- One lease for the whole batch: its expiry in the leases ZSET, its ids
-- and unanswered count in the batches hash.
local lease_id, ids = '', ''
if nheld > 0 then
  lease_id = fmt(now) .. '/' .. held[1]
  ids = table.concat(held, '|')
  redis.call('ZADD', KEYS[2], fmt(now + lease), lease_id)
  redis.call('HSET', batches, lease_id, fmt(nheld), lease_id .. '|ids', ids)
end
-- What the merge consumed of a tier is always the first nrem[i] members it
-- read: it takes each tier's members in order, reads from rank 0 on, and a
-- round stops consuming (max_expired) only where the claim ends. Removing
-- them by rank passes no member back to Redis.
for i = 1, T do
  if nrem[i] > 0 then redis.call('ZREMRANGEBYRANK', KEYS[3 + i], '0', fmt(nrem[i] - 1)) end
end
if depth - nremoved == 0 then redis.call('DEL', KEYS[3]) end
return {now, depth - nremoved, 0, oldest or 0, ids, inline, expired, lease_id}
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
local leases = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now), 'LIMIT', '0', fmt(max_per_call))
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
  redis.call('HDEL', batches, l, l .. '|ids', l .. '|p')
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
        redis.call('ZADD', KEYS[4 + tier + 1], '0', (member(dl, id)))
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
  redis.call('LTRIM', KEYS[3], '0', fmt(wake_cap - 1))
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
  local tier, dl
  if v then tier, dl = parse_entry(v) end
  if tier and tier < T and redis.call('ZREM', KEYS[2 + tier], (member(dl, id))) == 1 then
    redis.call('HDEL', KEYS[1], id)
    removed[#removed + 1] = id
  end
end
return removed
)lua";

}  // namespace

SLUICE_SCRIPT(Enqueue, kEnqueue)
SLUICE_SCRIPT(Claim, kClaim)
SLUICE_SCRIPT(Renew, kRenew)
SLUICE_SCRIPT(Reap, kReap)
SLUICE_SCRIPT(Withdraw, kWithdraw)

}  // namespace sluice::redis::scripts
