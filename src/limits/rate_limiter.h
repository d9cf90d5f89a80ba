// RateLimiter: per-API-key limits on requests per minute and tokens per
// minute, and the HTTP header values that advertise them.
//
// Contract. Check() decides one request for one key against both limits of
// its policy, atomically: the request is admitted only if BOTH limits allow
// it, and then both are consumed (1 request, `tokens` tokens); if either
// rejects, NEITHER is consumed. Tokens are charged at admission as
// input tokens + requested max_tokens; once the result is back, Reconcile()
// moves the key's token balance by (actual - charged): a refund when the
// model produced fewer tokens, an extra charge when it used more. Reconcile
// never blocks the caller and never fails a request.
//
// Semantics. Each limit allows `limit` units per 60 s window with a burst of
// one window's allowance (a key idle for a minute may spend its whole minute
// at once) and refills continuously (GCRA, see gcra.h). A limit of 0 is
// unlimited. The policy is passed on every call (tier default or per-key
// override, resolved by the caller); the stored state per key is only "when
// will each bucket be full again", so a policy change applies at once.
//
// Implementations: MemoryRateLimiter (one process). A Redis limiter for
// scale-out implements Check() as ONE atomic script call per request
// (KEYS: the key; ARGV: requests_per_minute, tokens_per_minute, tokens; time
// from the server's TIME) running the same arithmetic as gcra.h, and
// Reconcile() as a fire-and-forget script.
//
// Thread-safety: implementations are thread-safe; calls may come from any
// thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "limits/gcra.h"

namespace sluice {

// The rate-limit window of both limits, in seconds (the "per minute").
inline constexpr int64_t kRateLimitWindowSeconds = 60;

// Limits for one key. 0 = unlimited. REQUIRES: both >= 0.
struct RateLimitPolicy {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
};

// Which limit a decision is about.
enum class RateLimitKind {
  kNone,      // nothing rejected the request
  kRequests,  // requests per minute
  kTokens,    // tokens per minute
};

// "none", "requests", "tokens" (for JSON error bodies and metric labels).
const char* RateLimitKindName(RateLimitKind kind);

// The state of one limit for the key after the check.
struct RateLimitState {
  int64_t limit = 0;      // units per window; 0 = unlimited (other fields 0)
  int64_t remaining = 0;  // units that could be spent right now, 0..limit
  int64_t reset_s = 0;    // whole seconds (rounded up) until fully refilled
};

// The outcome of Check(): whether to admit, and everything the front door
// puts in the response headers and the 429 body.
struct RateLimitDecision {
  bool allowed = true;
  // The limit that rejected the request (kNone when allowed). When both
  // reject, the one that takes longer to allow it.
  RateLimitKind limited_by = RateLimitKind::kNone;
  // Whole seconds (rounded up, >= 1) until the same request would be
  // admitted; 0 when allowed. The value for Retry-After.
  int64_t retry_after_s = 0;
  // True when the request's token cost exceeds tokens_per_minute, so it can
  // never be admitted under this policy, however long the client waits.
  bool cost_exceeds_limit = false;
  int64_t token_cost = 0;   // tokens this request costs; consumed iff allowed
  RateLimitState requests;  // after this check (consumed iff allowed)
  RateLimitState tokens;
};

// The kRateLimited (429) status for a rejected decision, with a message that
// names the limit, e.g. "tokens per minute limit (100000) exceeded; retry in
// 7 s". REQUIRES: !decision.allowed.
Status RateLimitStatus(const RateLimitDecision& decision);

// The kInvalidArgument (400) status for a request that costs more tokens
// than its key's tokens-per-minute limit, so that waiting cannot help,
// naming the request's `field` ("<field>: the request costs N tokens, more
// than this key's tokens-per-minute limit of M").
// REQUIRES: decision.cost_exceeds_limit.
Status CostOverLimitStatus(const RateLimitDecision& decision, std::string_view field);

// Header values for one response. An empty value means "omit the field".
//
// X-RateLimit-* and RateLimit describe ONE limit: the one that rejected the
// request, otherwise the one closest to exhaustion (smallest remaining
// fraction; requests on a tie). Reset values are delta seconds. The fields
// follow draft-ietf-httpapi-ratelimit-headers-07:
//   RateLimit: limit=60, remaining=12, reset=7
//   RateLimit-Policy: 60;w=60, 100000;w=60   (requests, then tokens)
// Retry-After is set only on a rejection. With no limit configured, every
// field is empty.
struct RateLimitHeaders {
  static constexpr std::string_view kLimitName = "X-RateLimit-Limit";
  static constexpr std::string_view kRemainingName = "X-RateLimit-Remaining";
  static constexpr std::string_view kResetName = "X-RateLimit-Reset";
  static constexpr std::string_view kRateLimitName = "RateLimit";
  static constexpr std::string_view kPolicyName = "RateLimit-Policy";
  static constexpr std::string_view kRetryAfterName = "Retry-After";

  std::string limit;
  std::string remaining;
  std::string reset;
  std::string ratelimit;
  std::string ratelimit_policy;
  std::string retry_after;

  // Calls fn(std::string_view name, const std::string& value) for each
  // non-empty field, in the order above.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    const std::pair<std::string_view, const std::string*> fields[] = {
        {kLimitName, &limit},
        {kRemainingName, &remaining},
        {kResetName, &reset},
        {kRateLimitName, &ratelimit},
        {kPolicyName, &ratelimit_policy},
        {kRetryAfterName, &retry_after}};
    for (const auto& [name, value] : fields) {
      if (!value->empty()) fn(name, *value);
    }
  }
};

// The limit the single-limit fields describe (see RateLimitHeaders); kNone
// when no limit is configured.
RateLimitKind ReportedLimit(const RateLimitDecision& decision);

// Pure formatting; thread-safe.
RateLimitHeaders FormatRateLimitHeaders(const RateLimitDecision& decision);

// The arithmetic every RateLimiter implementation shares, so that memory and
// Redis limits answer alike. Pure; thread-safe.
//
// The header state of a limit of `limit` units per window whose bucket is
// full again at `tat_ns`.
RateLimitState LimitStateAfter(int64_t tat_ns, int64_t now_ns, int64_t limit);
// Fills the rejection fields of `d` (limited_by, retry_after_s,
// cost_exceeds_limit) from each limit's GCRA verdict (`allowed` when the
// limit is off). REQUIRES: !d->allowed; d->token_cost set.
void FillRejection(const RateLimitPolicy& policy, const gcra::Outcome& by_requests,
                   const gcra::Outcome& by_tokens, RateLimitDecision* d);

class RateLimiter {
 public:
  using CheckDone = std::function<void(Result<RateLimitDecision>)>;

  virtual ~RateLimiter() = default;

  // Checks `key` against `policy` and, iff both limits allow, consumes one
  // request and `tokens` tokens (see the file comment).
  // Errors: kInvalidArgument (negative policy field or tokens); remote
  // implementations: kUnavailable when the store cannot be reached (the
  // caller chooses to fail open or closed). The memory implementation never
  // blocks; a remote one blocks for one round trip.
  virtual Result<RateLimitDecision> Check(std::string_view key, const RateLimitPolicy& policy,
                                          int64_t tokens) = 0;

  // Same as Check() without blocking: `done` runs exactly once, either
  // inline (memory implementation; the default runs Check()) or later on
  // another thread (remote implementations). `done` must not block.
  virtual void CheckAsync(std::string_view key, const RateLimitPolicy& policy, int64_t tokens,
                          CheckDone done) {
    done(Check(key, policy, tokens));
  }

  // Adjusts the key's token balance by (actual_tokens - charged_tokens)
  // once a request admitted with `charged_tokens` has reported its actual
  // usage. A refund never raises the balance above a full bucket; an extra
  // charge may push it below empty (at most one window of debt), so the key
  // waits longer for its next request. No-op when the tokens limit is
  // unlimited or the difference is 0. Never blocks; errors are swallowed
  // (and counted by the implementation).
  virtual void Reconcile(std::string_view key, const RateLimitPolicy& policy,
                         int64_t charged_tokens, int64_t actual_tokens) = 0;
};

}  // namespace sluice
