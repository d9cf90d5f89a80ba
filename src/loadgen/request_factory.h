// RequestFactory: draws each request of a run (tier, key, model, input size)
// from the workload's weights and renders it as HTTP/1.1 request text for
// the workload's API (`POST /v1/inference`, or OpenAI's embeddings or chat:
// the input is then the text to embed, or the one user message).
//
// Every input is distinct: it starts with a 16-hex-digit id made of the
// factory's stream id and a sequence number, followed by pseudo-random words
// up to the drawn size. With an input pool (WorkloadSpec::inputs) an input
// is drawn from the pool instead: "p" and 15 hex digits of its index, then
// words and a size that depend on the index only, so every factory of a run
// sends the same text for the same index. Keys rotate round-robin within a
// tier.
// Deterministic for a given (spec, seed, stream id). Rendering uses pieces
// prepared once (escaped model names, header lines), so it costs one string
// append per piece.
//
// Thread-safety: none; one factory per load thread.
#pragma once

#include <optional>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "loadgen/workload.h"

namespace sluice::loadgen {

struct PlannedRequest {
  uint32_t tier = 0;         // index into WorkloadSpec::tiers
  uint32_t model = 0;        // index into WorkloadSpec::models
  uint32_t key = 0;          // index into the tier's keys
  uint32_t input_bytes = 0;  // size of the `input` string
  uint64_t seq = 0;          // per-factory sequence number (makes the input unique)
  // With an input pool: the index of the input drawn (0 = the most likely).
  std::optional<uint32_t> pool_index;
};

class RequestFactory {
 public:
  struct Options {
    std::string host_header;             // value of the Host header, e.g. "127.0.0.1:8080"
    std::string path = "/v1/inference";  // request target (ApiPath() of the workload's API)
    uint64_t seed = 1;                   // RNG seed for the draws
    uint32_t stream_id = 0;              // distinguishes factories' inputs; < 65536
  };

  // REQUIRES: ValidateWorkload(spec).ok(). Copies what it needs of `spec`.
  RequestFactory(const WorkloadSpec& spec, const Options& options);

  // Draws the next request.
  PlannedRequest Plan();

  // Replaces *out with the full HTTP request (headers and JSON body).
  void Render(const PlannedRequest& request, std::string* out) const;

  // The JSON body alone (for tests and the preflight check).
  void RenderBody(const PlannedRequest& request, std::string* out) const;

 private:
  // Cumulative weights; Pick() maps a uniform draw onto an index.
  struct Picker {
    std::vector<double> cumulative;
    uint32_t Pick(double u) const;
  };
  double Uniform();

  Options options_;
  Picker tiers_;
  Picker models_;
  Picker inputs_;                                     // empty: every input distinct
  std::vector<std::vector<std::string>> auth_lines_;  // [tier][key]: "Authorization: ...\r\n"
  std::vector<uint32_t> next_key_;                    // round-robin cursor per tier
  std::vector<std::string> body_prefixes_;            // per model: {"model":"M","input":"
  std::string body_suffix_;                           // ","parameters":{"max_tokens":N}}
  std::string prefer_line_;                           // "Prefer: respond-async\r\n" or ""
  std::string filler_;                                // pseudo-random words to cut inputs from
  ByteRange input_bytes_;
  std::mt19937_64 rng_;
  uint64_t seq_ = 0;
  mutable std::string body_scratch_;  // reused by Render()
};

}  // namespace sluice::loadgen
