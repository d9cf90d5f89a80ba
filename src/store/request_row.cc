#include "store/request_row.h"

#include <cstring>
#include <functional>

#include "common/utf8.h"

namespace sluice::store {
namespace {

size_t Combine(size_t seed, std::string_view text) {
  // boost::hash_combine's mixing step.
  return seed ^ (std::hash<std::string_view>{}(text) + 0x9e3779b9 + (seed << 6) + (seed >> 2));
}

}  // namespace

RowId::RowId(std::string_view id) {
  if (id.size() <= kInline) {
    std::memcpy(inline_, id.data(), id.size());
    size_ = static_cast<uint8_t>(id.size());
  } else {
    long_ = std::make_unique<std::string>(id);
  }
}

RowId& RowId::operator=(const RowId& other) {
  if (this != &other) *this = RowId(other.view());
  return *this;
}

size_t LabelInterner::Hash::operator()(const View& v) const {
  size_t h = 0;
  for (std::string_view part : {v.key_id, v.tier, v.model, v.worker_id}) h = Combine(h, part);
  return h;
}

size_t LabelInterner::Hash::operator()(const RowLabelsPtr& p) const {
  return (*this)(View{p->key_id, p->tier, p->model, p->worker_id});
}

bool LabelInterner::Equal::operator()(const View& a, const RowLabelsPtr& b) const {
  return a.key_id == b->key_id && a.tier == b->tier && a.model == b->model &&
         a.worker_id == b->worker_id;
}

RowLabelsPtr LabelInterner::Intern(std::string_view key_id, std::string_view tier,
                                   std::string_view model, std::string_view worker_id) {
  const View view{key_id, tier, model, worker_id};
  {
    std::lock_guard lock(mu_);
    if (auto it = values_.find(view); it != values_.end()) return *it;
  }
  auto made = std::make_shared<const RowLabels>(RowLabels{
      SanitizeText(key_id), SanitizeText(tier), SanitizeText(model), SanitizeText(worker_id)});
  std::lock_guard lock(mu_);
  if (values_.size() >= capacity_) return made;
  return *values_.insert(std::move(made)).first;  // another thread's when it won
}

size_t LabelInterner::size() const {
  std::lock_guard lock(mu_);
  return values_.size();
}

RequestRecord RequestRow::ToRecord() const {
  RequestRecord r;
  r.id = std::string(id.view());
  r.key_id = labels->key_id;
  r.tier = labels->tier;
  r.model = labels->model;
  r.worker_id = labels->worker_id;
  r.stage = stage;
  r.http_status = http_status;
  r.tokens_used = tokens_used;
  r.batch_id = batch_id;
  r.latency_ms = latency_ms;
  r.created_at = created_at;
  r.completed_at = completed_at;
  r.error = error;
  return r;
}

RequestRow RequestRow::FromRecord(const RequestRecord& r) {
  RequestRow row;
  row.id = RowId(r.id);
  row.labels = std::make_shared<const RowLabels>(
      RowLabels{SanitizeText(r.key_id), SanitizeText(r.tier), SanitizeText(r.model),
                SanitizeText(r.worker_id)});
  row.stage = r.stage;
  row.http_status = r.http_status;
  row.tokens_used = r.tokens_used;
  row.batch_id = r.batch_id;
  row.latency_ms = r.latency_ms;
  row.created_at = r.created_at;
  row.completed_at = r.completed_at;
  row.error = r.error;
  return row;
}

}  // namespace sluice::store
