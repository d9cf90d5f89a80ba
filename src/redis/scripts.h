// The Lua scripts behind the Redis queue, results, limits and registry.
// Each is atomic on the server (one script runs at a time), reads the time
// from the server's TIME (one clock for every gateway and worker), touches
// only the keys it is given (all in one hash slot: see keys.h), and is
// idempotent where a retry could run it twice (reap, heartbeat, read).
//
// Numbers: times are epoch microseconds; Lua numbers are doubles, exact for
// integers below 2^53 (epoch µs until the year 2255). Integers written back
// to Redis are formatted with %d, never Lua's tostring (14 digits).
//
// Contracts (KEYS / ARGV / reply); T = number of tiers, Q1..QT = the tier
// queues of one model (keys.h), "rl" = the optional rate-limit check, whose
// states are fields (key ids) of one hash (keys.h: sluice:rl, or one shard
// of it), read with one HMGET and written with one HSET per call:
//
// Entries. A queued or leased request is ONE hash field: payloads[id] =
// "tier|dispatch_deadline_us|arrival_us|attempts|gateway_id|" + payload
// (request_codec.h); ordering is one ZSET member per request while queued,
// deadline key + "|" + id (keys.h QueueMember) with score 0, so that the
// claim merges tiers by comparing members: Redis formats a score as text
// with printf and Lua parses it back, several times the cost of the rest of
// a claim (and a ZADD parses each score it is given with strtod).
// Leases are per claimed batch, not per request. Everything else a script
// does is per call or per batch (TIME, ZCARD, the wake list, the lease).
//
// Enqueue   KEYS payloads, wake, Q1..QT, then the rate-limit hash iff K > 0
//           ARGV T, capacity (0 = none), wake_cap, n, K packed as struct
//                '<ddddd' (one argument), then K key ids, then meta: per
//                item tier, tier_depth_limit (0 = none), rl index (0 = no
//                check, else 1..K), what it adds to its key's request TAT
//                (µs, floor(60 s / rpm) as gcra.h; -1 = no request limit)
//                and token TAT (µs, floor(tokens * 60 s / tpm); -1 = no
//                token limit, +inf = more tokens than tpm), packed as
//                struct '<BI4I4dd' (25 bytes each; every item of a key
//                carries the same policy), then n times: member
//                (QueueMember(dispatch_deadline_us, id), keys.h: the id is
//                read from it), entry
//           -> {depth (after), now_us, statuses: n digits, one per item
//               (0 queued, 1 duplicate id, 2 rate limited, 3 full, 4 bad
//               tier), or "" when every item was queued, the keys' states
//               as read: per key r_tat_us, t_tat_us packed as struct
//               '<d<d' (16 bytes)}: the caller replays the checks for each
//               item's TATs before its check (an item of a key that was
//               queued moves its TATs as rate_try() does; the first item's
//               policy is the key's)
//           The n ids are distinct (the caller answers a repeat within a
//           call itself: as its first copy was answered, or as a duplicate
//           when that was queued). Requests are decided in order,
//           each against the queue and limits the ones before it left.
//           For each, the rate limit is decided first; nothing is consumed
//           or queued unless both the limit and the queue bound allow. Per
//           call: TIME, T ZCARD, one HMGET of the ids (duplicates), one
//           HSET of the entries, one variadic ZADD per tier, one LPUSH of
//           min(queued, wake_cap) tokens (and an LTRIM past the cap); the
//           keys' states in one HMGET and one HSET of those consumed.
// Claim     KEYS payloads, leases, wake, Q1..QT, batches
//           ARGV one argument: T, max_batch, min_batch, max_delay_us,
//                lease_us, strict (0/1), max_expired, inline_max,
//                horizon_us, fill_to, then the priority of tier 0..T-1,
//                packed as doubles ('<d' each)
//           -> {now_us, depth (after), wait_us, oldest_arrival_us, ids,
//               {position, entry, ...inline}, {id, entry, ...expired}, lease}
//           ids: every id leased, in order, joined by "|" (the lease's ids,
//           below); those not expired are claimed. inline: the entries of
//           the claimed ids the script read, by 1-based position in ids
//           (entry as stored: prefix + payload; request_codec.h DecodeEntry).
//           A claimed id has no inline entry when the round that took it
//           held more than inline_max ids and it was not past its deadline
//           (those are read to decide "expired"): the caller reads it with
//           one HMGET of the payloads hash, since every byte a script reads
//           or returns is copied and hashed by Lua. Such an entry is not
//           checked here, so it may be gone by then (answered meanwhile
//           under a reaped lease).
//           With horizon_us > 0, a member due later than now + horizon_us
//           (asynchronous work) is taken only while fewer than fill_to are
//           taken; a tier whose next member is such is done for the call.
//           With depth < min_batch, claims nothing while the oldest head has
//           waited less than max_delay_us and no head is past its deadline;
//           wait_us then says how long until it would claim, and
//           oldest_arrival_us is the oldest head's arrival (0 otherwise).
//           Expired entries (dispatch deadline <= now, never claimed
//           before) are leased too and must be completed like claimed ones
//           (with a 504); a request re-queued from a lost lease (attempts >
//           0) was dispatched once already and is claimed whatever its
//           dispatch deadline (its total deadline bounds it on the worker).
//           ONE lease per call for everything it returns ("" when nothing):
//           leases[lease] = expiry, batches[lease] = how many are
//           unanswered (batches[lease .. "|p"] is set once some are
//           answered), batches[lease .. "|ids"] = the ids joined by "|"
//           (request ids never hold "|": RedisQueueClient refuses them). Deletes the wake list when
//           the queue is (left) empty: leftover tokens are stale. Tier heads are read as the merge
//           needs them (a tier's share of max_batch, then chunks of max_batch); entries are read
//           with one HMGET per round: all of a round of at most inline_max ids, else only those
//           past their deadline.
// Renew     KEYS leases   ARGV lease_us, lease...
//           -> number of leases extended to now + lease_us; leases no
//           longer held (answered, or reaped) are left alone.
// Complete  KEYS payloads, leases, Q1..QT, batches, then the rate-limit
//                hash iff S > 0
//           ARGV T, channel_prefix, G, then G groups of results, each:
//                gateway_id (whose the results are; "" = unknown: the
//                entry is read), lease (the claim's; "" = none), fresh
//                ("1" iff every request of the group was claimed on its
//                first attempt), count, message (the count results as one
//                JSON array: "[" result_json, ... "]"), lengths (each
//                result_json's length, little-endian uint32), then count
//                ids (distinct across the call: the caller sends an id
//                once, RedisBatchClaimer::CompleteAsync); then S, then S token
//                settlements: position (1-based, of a result in argument
//                order), key id, tpm, delta_tokens (tokens used - charged;
//                non-zero)
//           -> {answered, stale, dropped, messages, {position (1-based,
//               argument order) of each stale result}}
//           An id is answered iff its entry still exists, i.e. it has not
//           been answered (first completion wins, from its lease's holder
//           or from a worker whose lease was reaped); answers are published
//           as JSON arrays on channel_prefix .. gateway_id .. "}". Per call
//           one HDEL of the ids answered (per group, when the HMGET below
//           is skipped), and one HMGET of the ids to learn
//           which entries exist, skipped when every result is fresh and
//           names its owner and a held lease none of whose
//           requests was answered yet, and each such lease is named by as
//           many results as it holds (then all are unanswered: a
//           first-attempt request's entry can only go with an answer under
//           its one lease; a result must name the lease its request was
//           claimed under): then each group's message is published as it
//           came, else the live results are cut out of them and published
//           as ONE message per owning gateway; plus a ZREM per answer whose lease
//           is no longer held (it may wait re-queued). Per lease one HMGET
//           of its unanswered count (held iff present) and its "answered in
//           part" mark, and by the answers that were first (so a call sent
//           twice counts once) either its release (ZREM, HDEL) when they are
//           all, or an HINCRBY of the count and the mark. A
//           lease some of whose requests were answered by another worker
//           is not released here: it runs out and is reaped. Each settlement
//           of an answered id is made on its key's limit as
//           RateLimitReconcile does: a failure or a short answer gives
//           tokens back.
// Reap      KEYS payloads, leases, wake, dead, Q1..QT, dead_stats, batches
//           ARGV T, channel_prefix, max_retries, max_per_call, dead_cap,
//                wake_cap, model, error_code_name, error_message
//           -> {requeued, dead_lettered, dropped, leases handled}
//           Expired leases are released whole, oldest first, until
//           max_per_call requests have been looked at (so at most
//           max_per_call + one batch per call); each of their ids still
//           unanswered is re-queued (attempts + 1) or, past max_retries,
//           dead-lettered and answered "worker_lost". A lease without an
//           id list is taken for one request's (leases before batches).
// DeadLetterPush KEYS dead, dead_stats   ARGV cap, entry_json -> 1
//           (newest first, capped; total and dropped counted)
// DeadLetterRead KEYS dead, dead_stats   ARGV limit
//           -> {size, total, dropped, {entry_json... newest first}}
// Withdraw  KEYS payloads, Q1..QT   ARGV T, id...
//           -> {id, ...} the ids removed: those still queued (not leased);
//           their entries are deleted. Others are left alone.
// Heartbeat KEYS workers, workers_exp   ARGV worker_id, info, ttl_us -> now_us
// Deregister KEYS workers, workers_exp  ARGV worker_id -> removed (0/1)
// ReadWorkers KEYS workers, workers_exp -> {now_us, {info, ...}}  (expired
//           workers are removed)
// RateLimitCheck KEYS the rate-limit hash
//           ARGV K, K key ids, n, then per item: key index (1..K), rpm, tpm,
//                tokens
//           -> {now_us, then per item: allowed, r_tat_us, t_tat_us} (TATs
//           before that item's check; items of one key decided in order,
//           each allowed one consumed)
// RateLimitReconcile KEYS the rate-limit hash
//           ARGV K, K key ids, n, then per item: key index, tpm, delta_tokens
//           -> keys changed
#pragma once

#include "redis/lua_script.h"

namespace sluice::redis::scripts {

const LuaScript& Enqueue();
const LuaScript& Claim();
const LuaScript& Complete();
const LuaScript& Renew();
const LuaScript& Reap();
const LuaScript& Withdraw();
const LuaScript& DeadLetterPush();
const LuaScript& DeadLetterRead();
const LuaScript& Heartbeat();
const LuaScript& Deregister();
const LuaScript& ReadWorkers();
const LuaScript& RateLimitCheck();
const LuaScript& RateLimitReconcile();

}  // namespace sluice::redis::scripts
