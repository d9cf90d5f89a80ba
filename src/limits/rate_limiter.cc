#include "limits/rate_limiter.h"

#include <algorithm>
#include <string>

namespace sluice {
namespace {

const RateLimitState& StateOf(const RateLimitDecision& d, RateLimitKind kind) {
  return kind == RateLimitKind::kTokens ? d.tokens : d.requests;
}

std::string PolicyItem(int64_t limit) {
  return std::to_string(limit) + ";w=" + std::to_string(kRateLimitWindowSeconds);
}

}  // namespace

const char* RateLimitKindName(RateLimitKind kind) {
  switch (kind) {
    case RateLimitKind::kRequests:
      return "requests";
    case RateLimitKind::kTokens:
      return "tokens";
    case RateLimitKind::kNone:
      break;
  }
  return "none";
}

Status CostOverLimitStatus(const RateLimitDecision& decision, std::string_view field) {
  return InvalidArgument(std::string(field) + ": the request costs " +
                         std::to_string(decision.token_cost) +
                         " tokens, more than this key's tokens-per-minute limit of " +
                         std::to_string(decision.tokens.limit));
}

Status RateLimitStatus(const RateLimitDecision& decision) {
  const RateLimitKind kind =
      decision.limited_by == RateLimitKind::kNone ? RateLimitKind::kRequests : decision.limited_by;
  const RateLimitState& state = StateOf(decision, kind);
  std::string message = std::string(RateLimitKindName(kind)) + " per minute limit (" +
                        std::to_string(state.limit) + ") ";
  if (decision.cost_exceeds_limit) {
    message += "is below this request's cost of " + std::to_string(decision.token_cost) +
               " tokens (input + max_tokens)";
  } else {
    message += "exceeded; retry in " + std::to_string(decision.retry_after_s) + " s";
  }
  return Status(ErrorCode::kRateLimited, std::move(message));
}

RateLimitKind ReportedLimit(const RateLimitDecision& decision) {
  if (decision.limited_by != RateLimitKind::kNone) return decision.limited_by;
  const RateLimitState& r = decision.requests;
  const RateLimitState& t = decision.tokens;
  if (r.limit == 0) return t.limit == 0 ? RateLimitKind::kNone : RateLimitKind::kTokens;
  if (t.limit == 0) return RateLimitKind::kRequests;
  // Smaller remaining fraction: t.remaining / t.limit < r.remaining / r.limit.
  const __int128 tokens_side = static_cast<__int128>(t.remaining) * r.limit;
  const __int128 requests_side = static_cast<__int128>(r.remaining) * t.limit;
  return tokens_side < requests_side ? RateLimitKind::kTokens : RateLimitKind::kRequests;
}

RateLimitHeaders FormatRateLimitHeaders(const RateLimitDecision& decision) {
  RateLimitHeaders h;
  const RateLimitKind kind = ReportedLimit(decision);
  if (kind == RateLimitKind::kNone) return h;
  const RateLimitState& s = StateOf(decision, kind);
  h.limit = std::to_string(s.limit);
  h.remaining = std::to_string(s.remaining);
  h.reset = std::to_string(s.reset_s);
  h.ratelimit = "limit=" + h.limit + ", remaining=" + h.remaining + ", reset=" + h.reset;
  if (decision.requests.limit > 0) h.ratelimit_policy = PolicyItem(decision.requests.limit);
  if (decision.tokens.limit > 0) {
    if (!h.ratelimit_policy.empty()) h.ratelimit_policy += ", ";
    h.ratelimit_policy += PolicyItem(decision.tokens.limit);
  }
  if (!decision.allowed)
    h.retry_after = std::to_string(std::max<int64_t>(decision.retry_after_s, 1));
  return h;
}

namespace {
// Whole seconds, rounded up.
int64_t CeilSeconds(int64_t ns) { return ns <= 0 ? 0 : (ns + 999'999'999) / 1'000'000'000; }
}  // namespace

RateLimitState LimitStateAfter(int64_t tat_ns, int64_t now_ns, int64_t limit) {
  RateLimitState s;
  s.limit = limit;
  s.remaining = gcra::Remaining(tat_ns, now_ns, limit);
  s.reset_s = CeilSeconds(tat_ns - now_ns);
  return s;
}

void FillRejection(const RateLimitPolicy& policy, const gcra::Outcome& by_requests,
                   const gcra::Outcome& by_tokens, RateLimitDecision* d) {
  const int64_t tpm = policy.tokens_per_minute;
  d->cost_exceeds_limit = tpm > 0 && d->token_cost > tpm;
  // The request fits once every rejecting limit has refilled enough.
  int64_t retry_ns = 0;
  if (!by_requests.allowed) {
    d->limited_by = RateLimitKind::kRequests;
    retry_ns = by_requests.retry_after_ns;
  }
  if (!by_tokens.allowed && (d->cost_exceeds_limit || by_tokens.retry_after_ns > retry_ns)) {
    d->limited_by = RateLimitKind::kTokens;
    retry_ns = std::max(retry_ns, by_tokens.retry_after_ns);
  }
  if (d->limited_by == RateLimitKind::kNone) {
    // Rejected elsewhere (a Redis script rounding at the last microsecond)
    // although both verdicts here allow it: name the limit that is on.
    d->limited_by =
        policy.requests_per_minute > 0 ? RateLimitKind::kRequests : RateLimitKind::kTokens;
  }
  d->retry_after_s = std::max<int64_t>(1, CeilSeconds(retry_ns));
}

}  // namespace sluice
