// RequestRow: a request's row as the LogWriter buffers it until a sink writes
// it. Built on the front door's hot path (twice per request: admission and
// final state), so it is compact and allocation-free in the common case:
//   - the id is kept inline (RowId; ids from common/ids.h have 36 bytes),
//   - the text every request of a key repeats (key id, tier, model, worker)
//     is one shared, interned RowLabels (LabelInterner),
//   - the error text is empty (no allocation) unless the request failed.
// A RequestRecord (core/request_log.h) is what Lookup() returns; ToRecord()
// and FromRecord() convert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/request_log.h"

namespace sluice::store {

// A request id: inline up to kInline bytes, on the heap beyond (ids this
// process makes never are). Copyable; empty by default.
class RowId {
 public:
  static constexpr size_t kInline = 46;

  RowId() = default;
  explicit RowId(std::string_view id);
  RowId(const RowId& other) : RowId(other.view()) {}
  RowId& operator=(const RowId& other);
  RowId(RowId&&) noexcept = default;
  RowId& operator=(RowId&&) noexcept = default;

  std::string_view view() const {
    return long_ ? std::string_view(*long_) : std::string_view(inline_, size_);
  }

 private:
  char inline_[kInline] = {};
  uint8_t size_ = 0;                   // of inline_ when long_ is null
  std::unique_ptr<std::string> long_;  // ids longer than kInline
};

// The text a request row shares with every other request of its key, as
// databases store it: SanitizeText() of what was given (common/utf8.h), so
// sinks bind it without checking it again.
struct RowLabels {
  std::string key_id;
  std::string tier;
  std::string model;
  std::string worker_id;  // who ran it; empty when unknown or not yet run

  bool operator==(const RowLabels&) const = default;
};
using RowLabelsPtr = std::shared_ptr<const RowLabels>;

// Hands out one shared RowLabels per distinct value, so rows copy a pointer
// instead of four strings. Keeps at most `capacity` values (keys are
// configured, so a log meets few); past that, Intern() returns a fresh copy
// that is not kept. Text that is not valid UTF-8 (or holds NUL bytes) is
// stored repaired and therefore never found again: each call for it makes a
// fresh copy. Thread-safe: one short mutex per call.
class LabelInterner {
 public:
  explicit LabelInterner(size_t capacity = 65'536) : capacity_(capacity) {}
  RowLabelsPtr Intern(std::string_view key_id, std::string_view tier, std::string_view model,
                      std::string_view worker_id);
  size_t size() const;

 private:
  struct View {
    std::string_view key_id, tier, model, worker_id;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(const View& v) const;
    size_t operator()(const RowLabelsPtr& p) const;
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(const RowLabelsPtr& a, const RowLabelsPtr& b) const { return *a == *b; }
    bool operator()(const View& a, const RowLabelsPtr& b) const;
    bool operator()(const RowLabelsPtr& a, const View& b) const { return (*this)(b, a); }
  };

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<RowLabelsPtr, Hash, Equal> values_;  // GUARDED_BY(mu_)
};

// One request row. A row whose completed_at is zero is the request's
// admission (stage queued); with completed_at set, its final state.
struct RequestRow {
  RowId id;
  RowLabelsPtr labels;  // never null
  RequestStage stage = RequestStage::kQueued;
  int http_status = 0;  // when finished
  uint32_t tokens_used = 0;
  uint64_t batch_id = 0;  // 0 when never batched
  double latency_ms = 0;  // end to end, when finished
  WallTime created_at{};
  WallTime completed_at{};  // zero for an admission
  std::string error;        // FailureText() of a failed outcome; else empty

  bool finished() const { return completed_at != WallTime{}; }
  RequestRecord ToRecord() const;
  // A row holding `r`, with labels of its own (not interned, repaired as
  // RowLabels says).
  static RequestRow FromRecord(const RequestRecord& r);
};

}  // namespace sluice::store
