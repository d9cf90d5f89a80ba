// ResultRouter: hands finished requests back to the connection waiting for
// them. In one process that is the request's own completion (the session);
// across processes a Redis implementation publishes one message per owning
// gateway per batch. Thread-safe; Deliver() never blocks.
#pragma once

#include <vector>

#include "core/request.h"

namespace sluice {

class ResultRouter {
 public:
  virtual ~ResultRouter() = default;
  // REQUIRES: requests.size() == outcomes.size().
  virtual void Deliver(std::vector<RequestPtr>& requests,
                       std::vector<InferenceOutcome>& outcomes) = 0;
};

// Completes each request in place (one-process mode).
class LocalResultRouter final : public ResultRouter {
 public:
  void Deliver(std::vector<RequestPtr>& requests,
               std::vector<InferenceOutcome>& outcomes) override {
    for (size_t i = 0; i < requests.size(); ++i) requests[i]->Complete(std::move(outcomes[i]));
  }
};

}  // namespace sluice
