#include "core/dead_letter_queue.h"

#include "common/utf8.h"

namespace sluice {

Result<std::unique_ptr<DeadLetterQueue>> DeadLetterQueue::Create(const Options& options) {
  if (options.capacity == 0) return InvalidArgument("dead-letter capacity must be >= 1");
  return std::unique_ptr<DeadLetterQueue>(new DeadLetterQueue(options));
}

void DeadLetterQueue::Add(const InferenceRequest& req, int attempts, const Status& last_error,
                          const std::string& last_backend) {
  DeadLetter d;
  d.request_id = req.id;
  d.model = req.model;
  d.key_id = req.principal.key_id;
  d.tier = req.principal.tier_name;
  d.input_truncated = req.input.size() > options_.max_input_bytes;
  // Cut on a character boundary: entries are served as JSON.
  d.input = SanitizeUtf8(req.input, options_.max_input_bytes);
  d.attempts = attempts;
  d.last_error = SanitizeUtf8(last_error.message(), kMaxErrorBytes);
  d.last_backend = SanitizeUtf8(last_backend, kMaxErrorBytes);
  d.at = std::chrono::system_clock::now();
  if (options_.on_add) options_.on_add(d);
  std::lock_guard lock(mu_);
  if (entries_.size() == options_.capacity) {
    entries_.pop_front();
    ++dropped_;
  }
  entries_.push_back(std::move(d));
  ++total_;
}

void DeadLetterQueue::ReadNewest(size_t limit, PageDone done) const {
  DeadLetterPage page;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.rbegin(); it != entries_.rend() && page.entries.size() < limit; ++it) {
      page.entries.push_back(*it);
    }
    page.size = entries_.size();
    page.total = total_;
    page.dropped = dropped_;
  }
  done(std::move(page));
}

std::vector<DeadLetter> DeadLetterQueue::Newest(size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < limit; ++it) {
    out.push_back(*it);
  }
  return out;
}

size_t DeadLetterQueue::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

uint64_t DeadLetterQueue::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

uint64_t DeadLetterQueue::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace sluice
