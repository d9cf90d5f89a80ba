#include "redis/reaper.h"

#include <algorithm>
#include <mutex>

#include "redis/scripts.h"

namespace sluice::redis {
namespace {

Result<RedisReaper::Outcome> ParseReapReply(const ReplyResult& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal("reap script: " + reply->str);
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 4) {
    return Internal("reap script: unexpected reply " + reply->DebugString());
  }
  RedisReaper::Outcome o;
  o.requeued = static_cast<size_t>(e[0].AsInt().value_or(0));
  o.dead_lettered = static_cast<size_t>(e[1].AsInt().value_or(0));
  o.dropped = static_cast<size_t>(e[2].AsInt().value_or(0));
  o.scanned = static_cast<size_t>(e[3].AsInt().value_or(0));
  return o;
}

void Add(const RedisReaper::Outcome& o, RedisReaper::Outcome* total) {
  total->requeued += o.requeued;
  total->dead_lettered += o.dead_lettered;
  total->dropped += o.dropped;
  total->scanned = std::max(total->scanned, o.scanned);  // "call again" per shard
}

}  // namespace

Result<std::unique_ptr<RedisReaper>> RedisReaper::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("reaper: connection required");
  if (options.tier_count < 1 || options.tier_count > 64) {
    return InvalidArgument("reaper: tier_count must be in 1..64");
  }
  if (options.max_retries < 0) return InvalidArgument("reaper: max_retries must be >= 0");
  if (options.max_per_call < 1 || options.dead_letter_cap < 1 || options.wake_list_cap < 1) {
    return InvalidArgument("reaper: max_per_call, dead_letter_cap and wake_list_cap must be >= 1");
  }
  if (options.queue_shards < 1 || options.queue_shards > 64) {
    return InvalidArgument("reaper: queue_shards must be in 1..64");
  }
  return std::unique_ptr<RedisReaper>(new RedisReaper(options));
}

void RedisReaper::ScriptArgs(const std::string& model, size_t shard, std::vector<std::string>* keys,
                             std::vector<std::string>* args) const {
  const KeySpace& k = options_.keys;
  const std::string q = QueueShard(model, shard);
  *keys = {k.Payloads(q), k.Leases(q), k.Wake(q), k.Dead(q)};
  for (size_t t = 0; t < options_.tier_count; ++t) keys->push_back(k.Queue(q, t));
  keys->push_back(k.DeadStats(q));
  keys->push_back(k.Batches(q));
  *args = {std::to_string(options_.tier_count),
           k.ResultChannelPrefix(),
           std::to_string(options_.max_retries),
           std::to_string(options_.max_per_call),
           std::to_string(options_.dead_letter_cap),
           std::to_string(options_.wake_list_cap),
           model,
           ErrorCodeName(ErrorCode::kBackendError),
           "worker lost; retry budget (" + std::to_string(options_.max_retries) + ") spent"};
}

void RedisReaper::ReapAsync(const std::string& model, ReapDone done) {
  if (Status s = ValidateKeyPart("reaper: model", model); !s.ok()) return done(s);
  struct Tally {
    std::mutex mu;
    size_t left = 0;
    Result<Outcome> total = Outcome{};
    ReapDone done;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = options_.queue_shards;
  tally->done = std::move(done);
  for (size_t shard = 0; shard < options_.queue_shards; ++shard) {
    std::vector<std::string> keys, args;
    ScriptArgs(model, shard, &keys, &args);
    options_.connection->RunScript(scripts::Reap(), std::move(keys), std::move(args),
                                   [tally](ReplyResult reply) {
                                     Result<Outcome> o = ParseReapReply(reply);
                                     std::lock_guard lock(tally->mu);
                                     if (tally->total.ok() && !o.ok()) tally->total = o.status();
                                     if (tally->total.ok()) Add(*o, &*tally->total);
                                     if (--tally->left == 0) tally->done(std::move(tally->total));
                                   });
  }
}

Result<RedisReaper::Outcome> RedisReaper::ReapOnce(const std::string& model) {
  if (Status s = ValidateKeyPart("reaper: model", model); !s.ok()) return s;
  Outcome total;
  for (size_t shard = 0; shard < options_.queue_shards; ++shard) {
    std::vector<std::string> keys, args;
    ScriptArgs(model, shard, &keys, &args);
    Result<Outcome> o = ParseReapReply(
        options_.connection->CallScript(scripts::Reap(), std::move(keys), std::move(args)));
    if (!o.ok()) return o.status();
    Add(*o, &total);
  }
  return total;
}

}  // namespace sluice::redis
