// What `sluice bench` sends: the tier mix (with the API keys of each tier),
// the model mix, input sizes and max_tokens — and the parsers that turn
// command-line text into them. Every parser returns a Status that names the
// offending piece of text, for a clear error at start instead of a bad run.
//
// Pure functions over strings; no I/O (the caller reads the keys file).
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::loadgen {

struct WeightedName {
  std::string name;
  double weight = 1;  // relative; >= 0
};

// Parses `a=70,b=25,c=5` (spaces allowed around items). With
// `weight_optional`, a bare `a` means weight 1. Rejects empty names,
// duplicates, negative or non-numeric weights and an all-zero list. `what`
// names the flag in messages ("--mix").
Result<std::vector<WeightedName>> ParseWeightedList(std::string_view text, bool weight_optional,
                                                    std::string_view what);

struct TierKeys {
  std::string tier;
  std::vector<std::string> keys;  // at least one
};

// Parses a keys file: one `TIER KEY` per line; blank lines and `#` comments
// (whole line, or after whitespace) are skipped. `source` (the file name)
// prefixes messages: "keys.txt:3: expected `TIER KEY`, got 3 fields".
// Tiers keep the order of their first appearance.
Result<std::vector<TierKeys>> ParseKeysText(std::string_view text, std::string_view source);

// The demo keys of the bundled config: sk-free-demo-0001, sk-paid-demo-0001,
// sk-enterprise-demo-0001.
std::vector<TierKeys> DemoKeys();

struct ByteRange {
  uint32_t min_bytes = 64;
  uint32_t max_bytes = 64;  // >= min_bytes; sizes are uniform in [min, max]
};
// Smallest input: every input starts with a unique 16-character id, so that
// no two requests carry the same input (a cache cannot short-cut the run)
// unless the run asks for repeats (InputDistribution).
inline constexpr uint32_t kMinInputBytes = 17;
inline constexpr uint32_t kMaxInputBytes = 1 << 20;

// `N` or `N-M`, in bytes, kMinInputBytes..kMaxInputBytes.
Result<ByteRange> ParseByteRange(std::string_view text);

// `10s`, `500ms`, `250us`, `2m`, `1.5s`; a bare number is seconds. >= 0.
Result<int64_t> ParseDurationUs(std::string_view text, std::string_view what);

// `1000,2000,4000`: positive requests per second.
Result<std::vector<double>> ParseRateList(std::string_view text, std::string_view what);

struct TierMix {
  std::string tier;
  double weight = 0;              // > 0
  std::vector<std::string> keys;  // at least one; requests rotate through them
};

// Joins the tier weights with the keys. Tiers of weight 0 are dropped; every
// other tier needs at least one key ("--mix names tier `gold` but no key for
// it"). Order follows `mix`.
Result<std::vector<TierMix>> BuildTierMix(const std::vector<WeightedName>& mix,
                                          const std::vector<TierKeys>& keys);

// Which inputs a run sends: each one distinct (the default), or drawn from
// a pool of `pool` distinct inputs with Zipf weights (input k, k = 1..pool,
// weighs 1 / k^s), as hot inputs repeat in real traffic.
struct InputDistribution {
  // 0: every input distinct; else 1..kMaxInputPool (each load thread keeps
  // 8 bytes per pooled input for the draw).
  uint32_t pool = 0;
  double zipf_s = 0;  // the exponent, >= 0 (0: uniform over the pool)
};
inline constexpr uint32_t kMaxInputPool = 10'000'000;

// `unique`, or `zipf:S` with S >= 0 (the pool size comes from --input-pool).
Result<InputDistribution> ParseInputDistribution(std::string_view text, uint32_t pool);

// The API the load speaks: the request's path and body.
enum class Api {
  kInference,         // POST /v1/inference {"model", "input", "parameters"}
  kOpenAiEmbeddings,  // POST /v1/embeddings {"model", "input"}: one text each
  kOpenAiChat,        // POST /v1/chat/completions, one user message, streamed
};
// "/v1/inference", "/v1/embeddings" or "/v1/chat/completions".
const char* ApiPath(Api api);
// "inference", "openai-embeddings" or "openai-chat"; ParseApi() reads them.
const char* ApiName(Api api);
Result<Api> ParseApi(std::string_view name);

struct WorkloadSpec {
  std::vector<TierMix> tiers;        // from BuildTierMix
  std::vector<WeightedName> models;  // at least one with weight > 0
  ByteRange input_bytes;             // size of the `input` string
  InputDistribution inputs;          // distinct, or repeats from a pool
  int max_tokens = 16;               // parameters.max_tokens; 0 = omit parameters
  // Ask for answers later (`Prefer: respond-async`): a 202 counts as
  // answered, its latency is the submission's.
  bool async = false;
  Api api = Api::kInference;  // async: inference only
};

Status ValidateWorkload(const WorkloadSpec& spec);

}  // namespace sluice::loadgen
