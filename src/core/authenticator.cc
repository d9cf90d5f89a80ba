#include "core/authenticator.h"

#include <cstring>

namespace sluice {

Result<std::unique_ptr<Authenticator>> Authenticator::Create(const Options& options) {
  std::unique_ptr<Authenticator> auth(new Authenticator());
  for (const Key& key : options.keys) {
    Sha256Digest digest;
    if (!ParseSha256Hex(key.sha256, &digest)) {
      return InvalidArgument("key '" + key.id + "': sha256 must be 64 hex digits");
    }
    int tier = -1;
    for (size_t i = 0; i < options.tiers.size(); ++i) {
      if (options.tiers[i].name == key.tier) tier = static_cast<int>(i);
    }
    if (tier < 0) return InvalidArgument("key '" + key.id + "': unknown tier '" + key.tier + "'");
    const TierPolicy& policy = options.tiers[static_cast<size_t>(tier)];
    Principal p{key.id, static_cast<TierIndex>(tier), key.tier, {}};
    p.rate_limit.requests_per_minute =
        key.requests_per_minute >= 0 ? key.requests_per_minute : policy.requests_per_minute;
    p.rate_limit.tokens_per_minute =
        key.tokens_per_minute >= 0 ? key.tokens_per_minute : policy.tokens_per_minute;
    if (!auth->by_digest_.emplace(digest, std::move(p)).second) {
      return InvalidArgument("key '" + key.id + "': the same secret is configured twice");
    }
  }
  if (!options.service_token_sha256.empty()) {
    Sha256Digest digest;
    if (!ParseSha256Hex(options.service_token_sha256, &digest)) {
      return InvalidArgument("service token sha256 must be 64 hex digits");
    }
    auth->service_token_ = digest;
  }
  return auth;
}

const Principal* Authenticator::Authenticate(std::string_view api_key) const {
  if (api_key.empty()) return nullptr;
  Sha256Digest digest = Sha256(api_key);
  auto it = by_digest_.find(digest);
  if (it == by_digest_.end() || !ConstantTimeEqual(it->first, digest)) return nullptr;
  return &it->second;
}

bool Authenticator::IsServiceToken(std::string_view token) const {
  if (!service_token_ || token.empty()) return false;
  return ConstantTimeEqual(*service_token_, Sha256(token));
}

namespace {
// What follows "<scheme> " in `header` (scheme case-insensitive, lower-case
// `scheme` with its space), trimmed; empty when the scheme differs.
std::string_view Credentials(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size()) return {};
  for (size_t i = 0; i < scheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i]) return {};
  }
  std::string_view token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return token;
}
}  // namespace

std::string_view BearerToken(std::string_view header) { return Credentials(header, "bearer "); }

std::string BasicPassword(std::string_view header) {
  std::optional<std::string> decoded = Base64Decode(Credentials(header, "basic "));
  if (!decoded) return {};
  const size_t colon = decoded->find(':');
  return colon == std::string::npos ? std::string() : decoded->substr(colon + 1);
}

}  // namespace sluice
