#include "redis/redis_result_cache.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "common/log_throttle.h"
#include "redis/lua_script.h"

namespace sluice::redis {

namespace {

// KEYS entry, lru, sizes   ARGV key -> {the entry or nil, 1 if its index
// entry was dropped (it expired) else 0}. A hit moves the key up.
const LuaScript kLookup("cache_lookup", R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], 'XX', string.format('%d', t[1] * 1000000 + t[2]), ARGV[1])
  return {v, 0}
end
local s = redis.call('HGET', KEYS[3], ARGV[1])
if not s then return {false, 0} end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local total = tonumber(redis.call('HGET', KEYS[3], '') or '0') - tonumber(s)
redis.call('HSET', KEYS[3], '', string.format('%d', total > 0 and total or 0))
return {false, 1}
)lua");

// KEYS entry, lru, sizes   ARGV key, value, ttl_ms, max_bytes, overhead, max_drops,
// entry prefix -> {expired, evicted, total bytes, entries}
const LuaScript kStore("cache_store", R"lua(
local key, value, ttl, max_bytes = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_drops, prefix = tonumber(ARGV[6]), ARGV[7]
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local total = tonumber(redis.call('HGET', KEYS[3], '') or '0')
local old = redis.call('HGET', KEYS[3], key)
if old then total = total - tonumber(old) end
local size = #value + #key + tonumber(ARGV[5])
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
redis.call('HSET', KEYS[3], key, string.format('%d', size))
redis.call('ZADD', KEYS[2], string.format('%d', now), key)
total = total + size
local function drop(k)
  local s = redis.call('HGET', KEYS[3], k)
  if s then total = total - tonumber(s) end
  redis.call('HDEL', KEYS[3], k)
  redis.call('ZREM', KEYS[2], k)
  redis.call('DEL', prefix .. k)
end
-- Keys unused for longer than the time to live: their entries are gone.
local expired = 0
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf',
                         string.format('%d', now - ttl * 1000), 'LIMIT', '0', ARGV[6])
for _, k in ipairs(stale) do
  drop(k)
  expired = expired + 1
end
local evicted = 0
while total > max_bytes and evicted < max_drops do
  local oldest = redis.call('ZRANGE', KEYS[2], '0', '0')
  if #oldest == 0 then break end
  drop(oldest[1])
  evicted = evicted + 1
end
if total < 0 then total = 0 end
redis.call('HSET', KEYS[3], '', string.format('%d', total))
return {expired, evicted, total, redis.call('ZCARD', KEYS[2])}
)lua");

bool IsOk(const ReplyResult& r) { return r.ok() && !r->is_error(); }

std::string WhyFailed(const ReplyResult& r) { return r.ok() ? r->str : r.status().message(); }

}  // namespace

struct RedisResultCache::Counters {
  std::atomic<uint64_t> hits{0}, misses{0}, stores{0}, evictions{0}, expired{0}, failures{0};
  std::atomic<uint64_t> entries{0}, bytes{0};
  LogThrottle failure_log;

  void Failed(const std::string& model, const char* what, const std::string& why) {
    failures.fetch_add(1, std::memory_order_relaxed);
    if (auto held = failure_log.Allow()) {
      spdlog::warn("cache: model '{}': {} failed, the cache is bypassed ({}; {} more held back)",
                   model, what, why, *held);
    }
  }
};

std::string EncodeCachedAnswer(const CachedAnswer& answer) {
  std::string out = std::to_string(answer.tokens_used);
  out.reserve(out.size() + 2 + answer.model_version.size() + answer.output.size());
  out.push_back('\n');
  out += answer.model_version;
  out.push_back('\n');
  out += answer.output;
  return out;
}

std::optional<CachedAnswer> ParseCachedAnswer(std::string_view value) {
  const size_t a = value.find('\n');
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = value.find('\n', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  CachedAnswer out;
  auto [end, ec] = std::from_chars(value.data(), value.data() + a, out.tokens_used);
  if (ec != std::errc() || end != value.data() + a || a == 0) return std::nullopt;
  out.model_version = std::string(value.substr(a + 1, b - a - 1));
  out.output = std::string(value.substr(b + 1));
  return out;
}

RedisResultCache::RedisResultCache(const Options& options)
    : options_(options),
      entry_prefix_(options.keys.CacheEntryPrefix(options.model)),
      lru_key_(options.keys.CacheLru(options.model)),
      sizes_key_(options.keys.CacheSizes(options.model)),
      counters_(std::make_shared<Counters>()) {}

Result<std::unique_ptr<RedisResultCache>> RedisResultCache::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("connection: required");
  if (Status s = ValidateKeyPart("model", options.model); !s.ok()) return s;
  if (options.ttl_ms < 1 || options.ttl_ms > kMaxTtlMs) {
    return InvalidArgument("cache.ttl_ms: must be between 1 and " + std::to_string(kMaxTtlMs) +
                           " (30 days), got " + std::to_string(options.ttl_ms));
  }
  if (options.max_bytes < 1) return InvalidArgument("cache.max_bytes: must be at least 1");
  if (options.lookup_timeout_ms < 1 || options.lookup_timeout_ms > 10'000) {
    return InvalidArgument("lookup_timeout_ms: must be between 1 and 10000");
  }
  return std::unique_ptr<RedisResultCache>(new RedisResultCache(options));
}

std::optional<CachedAnswer> RedisResultCache::Lookup(std::string_view key) {
  Counters& c = *counters_;
  std::string k(key);
  ReplyResult r = WaitForReply(
      [&](RedisClient::ReplyCallback done) {
        options_.connection->RunScript(kLookup, {entry_prefix_ + k, lru_key_, sizes_key_}, {k},
                                       std::move(done));
      },
      std::chrono::milliseconds(options_.lookup_timeout_ms));
  if (!IsOk(r) || r->type != RedisReply::Type::kArray || r->elements.size() != 2) {
    c.Failed(options_.model, "a lookup", r.ok() && !r->is_error() ? "an odd reply" : WhyFailed(r));
    c.misses.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  if (r->elements[1].AsInt().value_or(0) == 1) c.expired.fetch_add(1, std::memory_order_relaxed);
  std::optional<CachedAnswer> hit;
  if (r->elements[0].type == RedisReply::Type::kString) {
    hit = ParseCachedAnswer(r->elements[0].str);
    if (!hit) c.Failed(options_.model, "a lookup", "an entry that is not an answer");
  }
  (hit ? c.hits : c.misses).fetch_add(1, std::memory_order_relaxed);
  return hit;
}

void RedisResultCache::Store(std::string key, CachedAnswer answer) {
  std::string entry = entry_prefix_ + key;
  options_.connection->RunScript(
      kStore, {std::move(entry), lru_key_, sizes_key_},
      {std::move(key), EncodeCachedAnswer(answer), std::to_string(options_.ttl_ms),
       std::to_string(options_.max_bytes), std::to_string(kEntryOverheadBytes),
       std::to_string(kMaxDropsPerStore), entry_prefix_},
      [counters = counters_, model = options_.model](ReplyResult r) {
        Counters& c = *counters;
        if (!IsOk(r) || r->type != RedisReply::Type::kArray || r->elements.size() != 4) {
          c.Failed(model, "a store", WhyFailed(r));
          return;
        }
        auto n = [&](size_t i) {
          return static_cast<uint64_t>(std::max<int64_t>(0, r->elements[i].AsInt().value_or(0)));
        };
        c.stores.fetch_add(1, std::memory_order_relaxed);
        c.expired.fetch_add(n(0), std::memory_order_relaxed);
        c.evictions.fetch_add(n(1), std::memory_order_relaxed);
        c.bytes.store(n(2), std::memory_order_relaxed);
        c.entries.store(n(3), std::memory_order_relaxed);
      });
}

ResultCache::Stats RedisResultCache::stats() const {
  const Counters& c = *counters_;
  Stats s;
  s.hits = c.hits.load(std::memory_order_relaxed);
  s.misses = c.misses.load(std::memory_order_relaxed);
  s.stores = c.stores.load(std::memory_order_relaxed);
  s.evictions = c.evictions.load(std::memory_order_relaxed);
  s.expired = c.expired.load(std::memory_order_relaxed);
  s.failures = c.failures.load(std::memory_order_relaxed);
  s.entries = c.entries.load(std::memory_order_relaxed);
  s.bytes = c.bytes.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice::redis
