// Fuzzes what a fixed inference API sends back: each BatchProtocol's
// Decode() (generic, OpenAI completions, OpenAI embeddings, KServe v2) on an
// arbitrary (HTTP status, body) for a batch of 1..8 requests.
//
// Input layout: byte 0 picks the protocol (low 2 bits) and the batch size
// (next 3 bits); byte 1 picks the status (200 when < 0xC0, else one of 16
// others, see StatusFrom); the rest is the body. Checks the Decode() contract
// (batch_protocol.h): an OK result has one item per request, a failed one
// is a kBackendError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/batch_protocol.h"

namespace {

namespace hb = sluice::http_backend;

constexpr hb::ProtocolKind kKinds[] = {
    hb::ProtocolKind::kGeneric, hb::ProtocolKind::kOpenAiCompletions,
    hb::ProtocolKind::kOpenAiEmbeddings, hb::ProtocolKind::kKServe};

struct Protocols {
  std::unique_ptr<hb::BatchProtocol> by_kind[4];
  std::vector<sluice::RequestPtr> requests;  // 8; a batch is a prefix

  Protocols() {
    for (int k = 0; k < 4; ++k) {
      hb::ProtocolOptions o;
      o.kind = kKinds[k];
      o.model = "m";
      o.base_path = "/api";
      auto p = hb::MakeBatchProtocol(o);
      if (!p.ok()) std::abort();
      by_kind[k] = std::move(p).value();
    }
    for (int i = 0; i < 8; ++i) {
      auto r = std::make_shared<sluice::InferenceRequest>();
      r->id = "req_" + std::to_string(i);
      r->model = "m";
      r->input = std::string(static_cast<size_t>(i) * 3, 'x');
      r->params.max_tokens = 1 + i;
      requests.push_back(std::move(r));
    }
  }
};

// 200 for three quarters of the byte values; otherwise another status,
// odd ones included.
int StatusFrom(uint8_t b) {
  constexpr int kOthers[16] = {201, 204, 299, 301, 400, 401, 404, 413,
                               429, 500, 502, 503, 504, 100, 0,   999};
  return b < 192 ? 200 : kOthers[(b - 192) % 16];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Protocols* protocols = new Protocols();
  if (size < 2) return 0;
  const hb::BatchProtocol& protocol = *protocols->by_kind[data[0] & 3];
  const size_t batch_size = 1 + ((data[0] >> 2) & 7);
  std::vector<sluice::RequestPtr> batch(protocols->requests.begin(),
                                        protocols->requests.begin() + batch_size);
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  sluice::BatchResult result = protocol.Decode(StatusFrom(data[1]), body, batch);
  if (result.status.ok() ? result.items.size() != batch_size
                         : result.status.code() != sluice::ErrorCode::kBackendError) {
    std::abort();
  }
  return 0;
}
