// The helpers the scripts share, and WithPrelude() (script_prelude.h).
#include "redis/script_prelude.h"

#include <string>
#include <string_view>
#include <vector>

namespace sluice::redis::scripts {
namespace {

// The helpers, as top-level definitions (WithPrelude() takes those a script
// uses): each is a `local` statement of one name starting a line, with the
// comment lines right above it.
constexpr const char* kPrelude = R"lua(
local W = 60000000
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- An integer as decimal text. Numbers go to redis.call() as this: Redis
-- turns a Lua number into text with printf("%.17g"), several times the cost.
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
  redis.call('HINCRBY', stats, 'total', '1')
  if len > cap then
    redis.call('HINCRBY', stats, 'dropped', fmt(len - cap))
    redis.call('LTRIM', list, '0', fmt(cap - 1))
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

// One top-level definition of the prelude: the name it defines and its
// text (with the comment lines above it).
struct Definition {
  std::string name;
  std::string text;
};

bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// True when `name` occurs in `text` as a whole identifier, outside lines
// that are comments (first non-blank characters "--"; the scripts hold no
// long strings, so such a line is never inside one).
bool Mentions(std::string_view text, std::string_view name) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line.substr(first).starts_with("--")) continue;
    for (size_t at = line.find(name); at != std::string_view::npos; at = line.find(name, at + 1)) {
      const size_t end = at + name.size();
      if ((at == 0 || !IsIdentifierChar(line[at - 1])) &&
          (end == line.size() || !IsIdentifierChar(line[end]))) {
        return true;
      }
    }
  }
  return false;
}

// The name a "local function f(" or "local f =" line defines.
std::string DefinedName(std::string_view line) {
  line.remove_prefix(6);  // "local "
  if (line.starts_with("function ")) line.remove_prefix(9);
  size_t end = 0;
  while (end < line.size() && IsIdentifierChar(line[end])) ++end;
  return std::string(line.substr(0, end));
}

// The prelude cut into its definitions, in order.
std::vector<Definition> SplitPrelude() {
  std::vector<Definition> defs;
  std::string_view rest = kPrelude;
  bool in_comment = false;  // the previous line is a top-level comment
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line =
        rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
    rest.remove_prefix(line.size());
    const bool comment = line.starts_with("--");
    const bool local = line.starts_with("local ");
    if ((comment || local) && !in_comment) defs.emplace_back();
    if (local) defs.back().name = DefinedName(line);
    if (!defs.empty()) defs.back().text += line;
    in_comment = comment;
  }
  return defs;
}

}  // namespace

LuaScript WithPrelude(const char* name, const char* body) {
  static const std::vector<Definition>* const defs = new std::vector<Definition>(SplitPrelude());
  // The definitions the body names, and those they name, to a fixed point.
  std::vector<bool> used(defs->size(), false);
  std::vector<std::string_view> texts = {body};
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < defs->size(); ++i) {
      if (used[i]) continue;
      for (std::string_view t : texts) {
        if (Mentions(t, (*defs)[i].name)) {
          used[i] = grew = true;
          break;
        }
      }
      if (used[i]) texts.push_back((*defs)[i].text);
    }
  }
  std::string script;
  for (size_t i = 0; i < defs->size(); ++i) {
    if (used[i]) script += (*defs)[i].text;
  }
  script += body;
  return LuaScript(name, script);
}

}  // namespace sluice::redis::scripts
