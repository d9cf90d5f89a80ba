// Fuzzes the Redis wire codec (redis/request_codec.h): the bytes a worker
// reads from the queue (an entry) and a gateway reads from its result
// channel.
// The first byte picks the decoder; the rest is the message. Checks, beyond
// "no crash": decoding is stable under re-encoding (encode(decode(x))
// decodes to the same encoding), and a decoded request or result converts
// to its in-process form (FromWireRequest, ToOutcome).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "redis/request_codec.h"

namespace {

using sluice::Result;
namespace redis = sluice::redis;

void CheckEntry(std::string_view text) {
  Result<redis::WireRequest> decoded = redis::DecodeEntry(text, "req_1", "model");
  if (!decoded.ok()) return;
  // What a worker does next with a claimed request (fixed clocks, so that a
  // crash reproduces).
  redis::WallClockAnchor anchor;
  anchor.steady = sluice::TimePoint{} + std::chrono::hours(1);
  anchor.epoch_us = 1'700'000'000'000'000;
  sluice::RequestPtr request = redis::FromWireRequest(*decoded, anchor);
  (void)request;
  std::string once = redis::EncodeEntry(*decoded);
  Result<redis::WireRequest> again = redis::DecodeEntry(once, "req_1", "model");
  if (!again.ok() || redis::EncodeEntry(*again) != once) std::abort();
}

void CheckResult(const redis::WireResult& result) {
  std::string once = redis::EncodeResult(result);
  Result<redis::WireResult> again = redis::DecodeResult(once);
  if (!again.ok() || redis::EncodeResult(*again) != once) std::abort();
  sluice::InferenceOutcome outcome = redis::ToOutcome(result);
  (void)outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckEntry(text);
      break;
    case 1: {
      Result<redis::WireResult> r = redis::DecodeResult(text);
      if (r.ok()) CheckResult(*r);
      break;
    }
    default: {
      Result<std::vector<redis::WireResult>> batch = redis::DecodeResultBatch(text);
      if (batch.ok()) {
        for (const redis::WireResult& r : *batch) CheckResult(r);
      }
      break;
    }
  }
  return 0;
}
