#include "app/request_collapsers.h"

namespace sluice {

namespace {
constexpr const char* kCollapsed = "sluice_collapsed_requests_total";
constexpr const char* kGroups = "sluice_collapse_groups";
constexpr const char* kWaiting = "sluice_collapse_waiting_requests";
constexpr const char* kSaved = "sluice_accelerator_items_saved_total";
}  // namespace

Result<RequestCollapser*> RequestCollapsers::Add(const ModelConfig& model, FrontDoorQueue* queue,
                                                 const ResultCache* cache) {
  RequestCollapser* c = nullptr;
  if (model.collapse) {
    auto collapser = RequestCollapser::Create({queue, executor_, ordering_});
    if (!collapser.ok()) {
      return InvalidArgument("models: '" + model.name + "': " + collapser.status().message());
    }
    c = collapser->get();
    collapsers_.push_back(std::move(collapser).value());
  } else {
    collapsers_.push_back(nullptr);
  }
  metrics::Labels labels = {{"model", model.name}};
  if (c != nullptr) {
    registry_->AddCallbackCounter(
        kCollapsed,
        "Requests answered with an identical request's batch item instead of their own.", labels,
        [c] { return static_cast<double>(c->collapsed()); });
    registry_->AddCallbackGauge(kGroups, "Groups of identical requests waiting for one answer.",
                                labels, [c] { return static_cast<double>(c->groups()); });
    registry_->AddCallbackGauge(kWaiting, "Requests waiting in groups of identical requests.",
                                labels, [c] { return static_cast<double>(c->waiting()); });
  }
  if (c != nullptr || cache != nullptr) {
    registry_->AddCallbackCounter(
        kSaved,
        "Batch items the accelerator did not run: result cache hits and collapsed requests.",
        labels, [c, cache] {
          uint64_t saved = c != nullptr ? c->collapsed() : 0;
          if (cache != nullptr) saved += cache->stats().hits;
          return static_cast<double>(saved);
        });
  }
  labels_.push_back(std::move(labels));
  return c;
}

RequestCollapsers::~RequestCollapsers() {
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (collapsers_[i] != nullptr) {
      registry_->RemoveCallback(kCollapsed, labels_[i]);
      registry_->RemoveCallback(kGroups, labels_[i]);
      registry_->RemoveCallback(kWaiting, labels_[i]);
    }
    registry_->RemoveCallback(kSaved, labels_[i]);  // false when it had neither
  }
}

}  // namespace sluice
