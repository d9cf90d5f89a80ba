// The queue's complete script (scripts.h): a worker's answers, published to
// their gateways, and their leases counted down. The other queue scripts are
// in queue_scripts.cc.
#include "redis/script_prelude.h"
#include "redis/scripts.h"

namespace sluice::redis::scripts {
namespace {

constexpr const char* kComplete = R"lua(
local T = tonumber(ARGV[1])
local prefix = ARGV[2]
local G = tonumber(ARGV[3])
local batches = KEYS[3 + T]
-- A group's header is its gateway, lease, fresh flag, count, message (its
-- results as one JSON array) and the results' lengths; then its ids
-- (scripts.h), distinct across the call. Results are numbered in argument
-- order.
local n, a = 0, 4
for _ = 1, G do
  local c = tonumber(ARGV[a + 3])
  n = n + c
  a = a + 6 + c
end
local settlements = a
if n == 0 then return {0, 0, 0, 0, {}} end
-- The leases named: held iff their unanswered count is in the batches hash
-- (the claim writes it with the lease; release and reaping delete it),
-- whether some of their requests were answered already (the "|p" mark),
-- and how many results name each.
local held, outstanding, named, held_order = {}, {}, {}, {}
local read_entries = false
a = 4
for _ = 1, G do
  local l, c = ARGV[a + 1], tonumber(ARGV[a + 3])
  if ARGV[a] == '' or ARGV[a + 2] ~= '1' then read_entries = true end
  if held[l] == nil then
    held[l] = false
    if l ~= '' then
      local st = redis.call('HMGET', batches, l, l .. '|p')
      if st[1] then
        held[l], outstanding[l], named[l] = true, tonumber(st[1]), 0
        held_order[#held_order + 1] = l
        if st[2] then read_entries = true end
      end
    end
  end
  if held[l] then named[l] = named[l] + c else read_entries = true end
  a = a + 6 + c
end
-- A request claimed on its first attempt has been in no lease but the one
-- that claimed it, so while that lease is held its entry exists until an
-- answer under it. Hence when every result is fresh and names its owner
-- and a held lease none of whose requests was answered yet, and
-- each such lease is named by as many results as it holds (a result must
-- name the lease its request was claimed under), all are unanswered: the
-- call answers them without reading their entries, and publishes each
-- group's message as it came (the common case: a whole batch completed at
-- once). Otherwise one HMGET says which entries exist (with a readable
-- owner), and the live results are cut out of the messages.
if not read_entries then
  for _, l in ipairs(held_order) do
    if named[l] ~= outstanding[l] then read_entries = true end
  end
end
local count = {}
for _, l in ipairs(held_order) do count[l] = 0 end
local answered, stale, stale_at, dropped, messages = 0, 0, {}, 0, 0
local live_at = true  -- every result is live, or a set of live positions
if not read_entries then
  a = 4
  for _ = 1, G do
    local l, c = ARGV[a + 1], tonumber(ARGV[a + 3])
    if c > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, a + 6, a + 5 + c)) end
    count[l] = count[l] + c
    answered = answered + c
    messages = messages + 1
    if redis.call('PUBLISH', prefix .. ARGV[a] .. '}', ARGV[a + 4]) == 0 then
      dropped = dropped + c
    end
    a = a + 6 + c
  end
else
  -- Each id's first answer (a repeat is stale; the caller sends none, but
  -- a result is never answered twice), and whether its owner must be read
  -- from its entry.
  local first, uniq, unknown, k = {}, {}, {}, 0
  a = 4
  for _ = 1, G do
    local c = tonumber(ARGV[a + 3])
    local owner_unknown = ARGV[a] == ''
    a = a + 6
    for _ = 1, c do
      k = k + 1
      local id = ARGV[a]
      if first[id] == nil then
        first[id] = k
        uniq[#uniq + 1] = id
        if owner_unknown then unknown[id] = true end
      end
      a = a + 1
    end
  end
  local entry, owner, live_ids = {}, {}, {}
  local values = redis.call('HMGET', KEYS[1], unpack(uniq))
  for j = 1, #uniq do
    local id, v = uniq[j], values[j]
    if v and unknown[id] then
      local _, _, _, _, g = parse_entry(v)
      owner[id] = g
      if g == nil then v = nil end
    end
    if v then
      entry[id] = v
      live_ids[#live_ids + 1] = id
    end
  end
  if #live_ids > 0 then redis.call('HDEL', KEYS[1], unpack(live_ids)) end
  local groups, order, k = {}, {}, 0
  live_at = {}
  a = 4
  for _ = 1, G do
    local gw, l, c, msg, lengths = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5]
    a = a + 6
    local in_lease = held[l]
    local at, p = 2, 1  -- the first result follows the message's '['
    for _ = 1, c do
      k = k + 1
      local id = ARGV[a]
      local len
      len, p = struct.unpack('<I4', lengths, p)
      local v = entry[id]
      if v and first[id] == k then
        live_at[k] = true
        -- Only a first answer counts toward its lease, so that a call sent
        -- again (its reply was lost) cannot release the lease early.
        if in_lease then
          count[l] = count[l] + 1
        else
          -- Its lease was reaped: it may wait re-queued.
          local tier, dl = parse_entry(v)
          if tier and tier < T then redis.call('ZREM', KEYS[3 + tier], (member(dl, id))) end
        end
        local g = gw
        if g == '' then g = owner[id] end
        local out = groups[g]
        if out == nil then
          out = {}
          groups[g] = out
          order[#order + 1] = g
        end
        out[#out + 1] = string.sub(msg, at, at + len - 1)
        answered = answered + 1
      else
        stale = stale + 1
        stale_at[#stale_at + 1] = k
      end
      at = at + len + 1
      a = a + 1
    end
  end
  dropped = publish_groups(prefix, groups, order)
  messages = #order
end
-- A lease whose every request has been answered is released; one some of
-- whose requests were is marked. (One whose requests were answered by
-- someone else, or could not be read, runs out and is reaped with nothing
-- left to re-queue.)
for _, l in ipairs(held_order) do
  if count[l] >= outstanding[l] then
    redis.call('ZREM', KEYS[2], l)
    redis.call('HDEL', batches, l, l .. '|ids', l .. '|p')
  elseif count[l] > 0 then
    redis.call('HINCRBY', batches, l, fmt(-count[l]))
    redis.call('HSET', batches, l .. '|p', '1')
  end
end
-- Settle each live answer's token charge with what was used.
local S = tonumber(ARGV[settlements]) or 0
local names, index, todo = {}, {}, {}
for s = 0, S - 1 do
  local b = settlements + 1 + 4 * s
  if live_at == true or live_at[tonumber(ARGV[b])] then
    local name = ARGV[b + 1]
    if index[name] == nil then
      names[#names + 1] = name
      index[name] = #names
    end
    todo[#todo + 1] = b
  end
end
if #todo > 0 then
  local now = now_us()
  local states, unmarked = rate_read(KEYS[4 + T], names)
  for _, b in ipairs(todo) do
    local st = states[index[ARGV[b + 1]]]
    local t_new = settle_tat(st[2], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 2]), now)
    if t_new then st[2], st[3] = t_new, true end
  end
  rate_write(KEYS[4 + T], names, states, unmarked)
end
return {answered, stale, dropped, messages, stale_at}
)lua";

}  // namespace

SLUICE_SCRIPT(Complete, kComplete)

}  // namespace sluice::redis::scripts
