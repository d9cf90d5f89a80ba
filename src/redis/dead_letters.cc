#include "redis/dead_letters.h"

#include <algorithm>
#include <mutex>

#include <boost/json.hpp>

#include "common/utf8.h"
#include "redis/scripts.h"

namespace sluice::redis {
namespace {

namespace json = boost::json;

// Input bytes kept of a reaped request's payload (as DeadLetterQueue does).
constexpr size_t kMaxInputBytes = 4'096;

std::string StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t IntField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

std::string EncodeDeadLetter(const DeadLetter& d) {
  const int64_t at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(d.at.time_since_epoch()).count();
  json::object o{{"id", d.request_id},        {"model", d.model},
                 {"key", d.key_id},           {"tier", d.tier},
                 {"input", d.input},          {"input_truncated", d.input_truncated},
                 {"attempts", d.attempts},    {"error", d.last_error},
                 {"backend", d.last_backend}, {"at_us", at_us}};
  return json::serialize(o);
}

Result<DeadLetter> DecodeDeadLetter(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return InvalidArgument("dead letter: not a JSON object");
  const json::object& o = v.as_object();
  DeadLetter d;
  d.request_id = StringField(o, "id");
  d.model = StringField(o, "model");
  if (d.request_id.empty() || d.model.empty()) {
    return InvalidArgument("dead letter: \"id\" and \"model\" required");
  }
  d.attempts = static_cast<int>(IntField(o, "attempts"));
  d.at = std::chrono::system_clock::time_point(std::chrono::microseconds(IntField(o, "at_us")));
  if (const json::value* request = o.if_contains("request"); request && request->is_object()) {
    const json::object& r = request->as_object();  // a reaped request's payload
    d.key_id = StringField(r, "key");
    d.tier = StringField(r, "tn");
    const std::string input = StringField(r, "in");
    d.input_truncated = input.size() > kMaxInputBytes;
    d.input = SanitizeUtf8(input, kMaxInputBytes);
    d.last_error = "lease expired: the worker holding it stopped renewing (" +
                   StringField(o, "reason") + ", gateway " + StringField(o, "gw") + ")";
    return d;
  }
  d.key_id = StringField(o, "key");
  d.tier = StringField(o, "tier");
  d.input = StringField(o, "input");
  const json::value* cut = o.if_contains("input_truncated");
  d.input_truncated = cut != nullptr && cut->is_bool() && cut->as_bool();
  d.last_error = StringField(o, "error");
  d.last_backend = StringField(o, "backend");
  return d;
}

Result<std::unique_ptr<RedisDeadLetters>> RedisDeadLetters::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("dead letters: connection required");
  if (options.capacity < 1) return InvalidArgument("dead letters: capacity must be >= 1");
  if (options.queue_shards < 1 || options.queue_shards > 64) {
    return InvalidArgument("dead letters: queue_shards must be in 1..64");
  }
  for (const std::string& m : options.models) {
    if (Status s = ValidateKeyPart("dead letters: model", m); !s.ok()) return s;
  }
  return std::unique_ptr<RedisDeadLetters>(new RedisDeadLetters(options));
}

void RedisDeadLetters::Push(const DeadLetter& letter) {
  if (!ValidateKeyPart("model", letter.model).ok()) {
    counters_->push_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const KeySpace& k = options_.keys;
  options_.connection->RunScript(scripts::DeadLetterPush(),
                                 {k.Dead(letter.model), k.DeadStats(letter.model)},
                                 {std::to_string(options_.capacity), EncodeDeadLetter(letter)},
                                 [counters = counters_](ReplyResult reply) {
                                   if (!reply.ok() || reply->is_error()) {
                                     counters->push_errors.fetch_add(1, std::memory_order_relaxed);
                                   }
                                 });
}

void RedisDeadLetters::ReadNewest(size_t limit, PageDone done) const {
  if (options_.models.empty()) {
    done(DeadLetterPage{});
    return;
  }
  struct Gather {
    std::mutex mu;
    size_t left = 0;
    DeadLetterPage page;
    Status error;
    PageDone done;
  };
  auto gather = std::make_shared<Gather>();
  gather->left = options_.models.size() * options_.queue_shards;
  gather->done = std::move(done);
  const KeySpace& k = options_.keys;
  for (size_t i = 0; i < options_.models.size() * options_.queue_shards; ++i) {
    const std::string q =
        QueueShard(options_.models[i / options_.queue_shards], i % options_.queue_shards);
    options_.connection->RunScript(
        scripts::DeadLetterRead(), {k.Dead(q), k.DeadStats(q)}, {std::to_string(limit)},
        [gather, limit, counters = counters_](ReplyResult reply) {
          std::unique_lock lock(gather->mu);
          if (!reply.ok()) {
            gather->error = reply.status();
          } else if (reply->is_error() || reply->elements.size() != 4) {
            gather->error = Internal("dead letter read: unexpected reply");
          } else {
            const auto& e = reply->elements;
            gather->page.size +=
                static_cast<uint64_t>(std::max<int64_t>(0, e[0].AsInt().value_or(0)));
            gather->page.total +=
                static_cast<uint64_t>(std::max<int64_t>(0, e[1].AsInt().value_or(0)));
            gather->page.dropped +=
                static_cast<uint64_t>(std::max<int64_t>(0, e[2].AsInt().value_or(0)));
            for (const RedisReply& entry : e[3].elements) {
              Result<DeadLetter> d = DecodeDeadLetter(entry.str);
              if (!d.ok()) {
                counters->undecodable.fetch_add(1, std::memory_order_relaxed);
                continue;
              }
              gather->page.entries.push_back(std::move(d).value());
            }
          }
          if (--gather->left > 0) return;
          lock.unlock();  // the last reply: no other callback touches it now
          if (!gather->error.ok()) {
            gather->done(gather->error);
            return;
          }
          std::vector<DeadLetter>& all = gather->page.entries;
          std::stable_sort(all.begin(), all.end(),
                           [](const DeadLetter& a, const DeadLetter& b) { return a.at > b.at; });
          if (all.size() > limit) all.resize(limit);
          gather->done(std::move(gather->page));
        });
  }
}

}  // namespace sluice::redis
