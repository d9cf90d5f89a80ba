// FakeBackend: a Backend whose batches finish only when the test says so.
// Records every batch it was given. Single-threaded (tests drive it).
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"

namespace sluice::testing {

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::string name = "fake") : name_(std::move(name)) {}

  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override {
    batches.push_back(batch);
    pending_.push_back(std::move(done));
  }
  const std::string& name() const override { return name_; }

  bool busy() const { return !pending_.empty(); }
  // Finishes the oldest in-flight batch: every item gets "out:<input>".
  void FinishOk() {
    const auto& batch = batches[batches.size() - pending_.size()];
    BatchResult r;
    r.model_version = "fake-v1";
    for (const auto& req : batch) r.items.push_back({Status::Ok(), "out:" + req->input, 3});
    Finish(std::move(r));
  }
  void Finish(BatchResult r) {
    auto done = std::move(pending_.front());
    pending_.erase(pending_.begin());
    done(std::move(r));
  }

  std::vector<std::vector<RequestPtr>> batches;

 private:
  std::string name_;
  std::vector<DoneFn> pending_;
};

}  // namespace sluice::testing
