// Backend: one accelerator slot of a fixed inference API.
//
// A slot runs one batch at a time; the dispatcher that owns it guarantees
// that. RunBatch() never blocks: it starts the work and returns, and `done`
// is called exactly once later, from any thread, with either a batch-level
// error (status not OK; items ignored) or one ItemResult per input, in input
// order. A per-item error fails only that item. Implementations: the embedded
// simulator (backends/sim) and the HTTP protocols (backends/http).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/request.h"

namespace sluice {

struct ItemResult {
  Status status;  // OK, or why this item failed
  std::string output;
  uint32_t tokens_used = 0;  // input + output tokens
  // Of tokens_used, the input's, when the backend reports it (a chat
  // server's usage); 0: not reported (the front door estimates it).
  uint32_t prompt_tokens = 0;
};

struct BatchResult {
  Status status;                  // batch-level failure when not OK
  std::vector<ItemResult> items;  // one per input when status is OK
  std::string model_version;
};

class Backend {
 public:
  using DoneFn = std::function<void(BatchResult&&)>;
  virtual ~Backend() = default;

  // REQUIRES: batch non-empty; no other batch in flight on this slot.
  // The requests stay alive until `done` runs (the caller holds them).
  virtual void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) = 0;

  // For logs and metrics, e.g. "sim:model-a/2".
  virtual const std::string& name() const = 0;
};

}  // namespace sluice
