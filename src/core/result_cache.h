// ResultCache: answers to deterministic requests, kept for a while so that
// a repeat is answered without the accelerator.
//
// A request is looked up by ResultCacheKey(): SHA-256 over the model, its
// version, the input and the parameters that shape the output, so a new
// model version never serves an old answer. What may be cached is the
// caller's decision (InferenceService: a model whose outputs are
// deterministic, or a request at temperature 0); a cache only keeps and
// finds. A cache that fails is bypassed: Lookup() misses and Store() drops,
// and the failure is counted in stats(), never reported to the client.
//
// Implementations are thread-safe; Lookup() and Store() never block on
// I/O for longer than their store's own bounded timeout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/request.h"

namespace sluice {

// What a cached answer holds: what the client gets back.
struct CachedAnswer {
  std::string output;
  uint32_t tokens_used = 0;
  std::string model_version;
};

class ResultCache {
 public:
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;     // expired entries included
    uint64_t stores = 0;     // answers kept
    uint64_t evictions = 0;  // entries dropped to stay within the byte budget
    uint64_t expired = 0;    // entries found past their time to live (and dropped)
    uint64_t failures = 0;   // store errors: the cache was bypassed
    uint64_t entries = 0;    // kept now
    uint64_t bytes = 0;      // kept now, as the budget counts them
  };

  virtual ~ResultCache() = default;
  // The answer kept under `key`, if any and still live.
  virtual std::optional<CachedAnswer> Lookup(std::string_view key) = 0;
  // Keeps `answer` under `key` (replacing what was there).
  virtual void Store(std::string key, CachedAnswer answer) = 0;
  virtual Stats stats() const = 0;
};

// The key of a request for `model` at `model_version`: 64 hex digits of
// SHA-256 over the model, the version, the input, max_tokens, the
// temperature (absent and present are different) and the other parameters
// as the client sent them (`params.json`, the forwarded object). Fields are
// length-prefixed, so no two different requests share a key by
// concatenation. REQUIRES: params.max_tokens resolved (the model default
// applied), so that sending the default explicitly hits the same entry.
std::string ResultCacheKey(std::string_view model, std::string_view model_version,
                           std::string_view input, const InferenceParams& params);

}  // namespace sluice
