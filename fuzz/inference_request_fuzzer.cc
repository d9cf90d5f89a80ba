// Fuzzes the body of POST /v1/inference: arbitrary bytes through
// DecodeInferenceRequest(). Any input must give OK or kInvalidArgument,
// never a crash or another code.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/inference_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  sluice::http::DecodedInference decoded;
  sluice::Status s = sluice::http::DecodeInferenceRequest(body, &decoded);
  if (!s.ok() && s.code() != sluice::ErrorCode::kInvalidArgument) std::abort();
  return 0;
}
