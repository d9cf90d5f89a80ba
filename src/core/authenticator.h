// Authenticator: API key -> Principal, and the internal service token check.
//
// Keys are held only as SHA-256 digests. A presented key is hashed and looked
// up by digest; the stored digest is then compared in constant time, so
// timing reveals nothing about the secret. Immutable after Create();
// thread-safe, lock-free.
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/crypto.h"
#include "common/status.h"
#include "core/request.h"
#include "core/tier.h"

namespace sluice {

class Authenticator {
 public:
  struct Key {
    std::string id;                    // non-secret key id
    std::string tier;                  // tier name; must be in `tiers`
    std::string sha256;                // hex digest of the secret
    int64_t requests_per_minute = -1;  // override; -1 = the tier's limit
    int64_t tokens_per_minute = -1;    // override; -1 = the tier's limit
  };
  struct Options {
    std::vector<TierPolicy> tiers;  // tier table (index = TierIndex)
    std::vector<Key> keys;
    std::string service_token_sha256;  // empty: internal endpoints closed
  };

  static Result<std::unique_ptr<Authenticator>> Create(const Options& options);

  // The principal for `api_key`, or nullptr when unknown.
  const Principal* Authenticate(std::string_view api_key) const;
  // True iff `token` is the configured service token.
  bool IsServiceToken(std::string_view token) const;

 private:
  struct DigestHash {
    size_t operator()(const Sha256Digest& d) const {
      size_t h;
      std::memcpy(&h, d.data(), sizeof(h));
      return h;
    }
  };
  Authenticator() = default;

  std::unordered_map<Sha256Digest, Principal, DigestHash> by_digest_;
  std::optional<Sha256Digest> service_token_;
};

// The authenticator in force (keys, their tiers' limits, the service
// token); a config reload replaces it whole. A request reads it once and
// keeps that one (Get()) until it has copied what it needs, so a reload
// never changes a request half-way. Thread-safe.
class AuthenticatorSlot {
 public:
  explicit AuthenticatorSlot(std::shared_ptr<const Authenticator> initial)
      : current_(std::move(initial)) {}
  std::shared_ptr<const Authenticator> Get() const {
    return current_.load(std::memory_order_acquire);
  }
  void Set(std::shared_ptr<const Authenticator> next) {
    current_.store(std::move(next), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Authenticator>> current_;
};

// Extracts the token from "Bearer <token>" (scheme case-insensitive);
// empty when the header is missing or malformed.
std::string_view BearerToken(std::string_view authorization_header);
// The password of "Basic <base64(user:password)>" (RFC 7617; scheme case-
// insensitive; any user name); empty when the header is not that. Lets a
// browser present the service token (the dashboard).
std::string BasicPassword(std::string_view authorization_header);

}  // namespace sluice
