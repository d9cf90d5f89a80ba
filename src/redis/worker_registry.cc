#include "redis/worker_registry.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "redis/scripts.h"

namespace sluice::redis {
namespace {

namespace json = boost::json;

std::string EncodeHeartbeat(const WorkerHeartbeat& b) {
  json::object o;
  o["id"] = b.worker_id;
  o["m"] = b.model;
  o["ep"] = b.endpoint;
  o["u"] = b.utilisation;
  o["rps"] = b.throughput_rps;
  o["slots"] = b.healthy_slots;
  return json::serialize(o);
}

bool DecodeHeartbeat(std::string_view text, WorkerHeartbeat* b) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return false;
  const json::value* id = o->if_contains("id");
  const json::value* m = o->if_contains("m");
  const json::value* ep = o->if_contains("ep");
  const json::value* u = o->if_contains("u");
  const json::value* rps = o->if_contains("rps");
  const json::value* slots = o->if_contains("slots");
  if (id == nullptr || !id->is_string() || m == nullptr || !m->is_string() || ep == nullptr ||
      !ep->is_string() || u == nullptr || !u->is_number() || rps == nullptr || !rps->is_number() ||
      slots == nullptr || !slots->is_number()) {
    return false;
  }
  b->worker_id = std::string(id->get_string());
  b->model = std::string(m->get_string());
  b->endpoint = std::string(ep->get_string());
  b->utilisation = u->to_number<double>();
  b->throughput_rps = rps->to_number<double>();
  b->healthy_slots = slots->to_number<uint32_t>();
  return true;
}

Status CheckBeat(const WorkerHeartbeat& beat) {
  if (Status s = ValidateKeyPart("heartbeat: model", beat.model); !s.ok()) return s;
  if (beat.worker_id.empty()) return InvalidArgument("heartbeat: worker_id must not be empty");
  return Status::Ok();
}

Status StatusOf(const ReplyResult& reply, std::string_view what) {
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return Internal(std::string(what) + ": " + reply->str);
  return Status::Ok();
}

Result<ModelCapacity> ParseRead(const ReplyResult& reply) {
  if (Status s = StatusOf(reply, "read workers"); !s.ok()) return s;
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.size() != 2 ||
      e[1].type != RedisReply::Type::kArray) {
    return Internal("read workers: unexpected reply " + reply->DebugString());
  }
  ModelCapacity c;
  for (const RedisReply& info : e[1].elements) {
    WorkerHeartbeat b;
    if (!DecodeHeartbeat(info.str, &b)) continue;  // a foreign or corrupt entry
    if (b.healthy_slots > 0) {
      ++c.healthy_workers;
      c.healthy_slots += b.healthy_slots;
      c.throughput_rps += b.throughput_rps;
    }
    c.workers.push_back(std::move(b));
  }
  return c;
}

}  // namespace

Result<std::unique_ptr<RedisWorkerRegistry>> RedisWorkerRegistry::Create(const Options& options) {
  if (options.connection == nullptr) return InvalidArgument("worker registry: connection required");
  if (options.heartbeat_ttl_ms <= 0) {
    return InvalidArgument("worker registry: heartbeat_ttl_ms must be > 0");
  }
  return std::unique_ptr<RedisWorkerRegistry>(new RedisWorkerRegistry(options));
}

void RedisWorkerRegistry::HeartbeatAsync(const WorkerHeartbeat& beat, Done done) {
  if (Status s = CheckBeat(beat); !s.ok()) return done(s);
  options_.connection->RunScript(
      scripts::Heartbeat(),
      {options_.keys.Workers(beat.model), options_.keys.WorkerExpiry(beat.model)},
      {beat.worker_id, EncodeHeartbeat(beat), std::to_string(options_.heartbeat_ttl_ms * 1000)},
      [done = std::move(done)](ReplyResult reply) { done(StatusOf(reply, "heartbeat")); });
}

Status RedisWorkerRegistry::Heartbeat(const WorkerHeartbeat& beat) {
  if (Status s = CheckBeat(beat); !s.ok()) return s;
  return StatusOf(options_.connection->CallScript(
                      scripts::Heartbeat(),
                      {options_.keys.Workers(beat.model), options_.keys.WorkerExpiry(beat.model)},
                      {beat.worker_id, EncodeHeartbeat(beat),
                       std::to_string(options_.heartbeat_ttl_ms * 1000)}),
                  "heartbeat");
}

Status RedisWorkerRegistry::Deregister(const std::string& model, const std::string& worker_id) {
  if (Status s = ValidateKeyPart("deregister: model", model); !s.ok()) return s;
  return StatusOf(
      options_.connection->CallScript(
          scripts::Deregister(), {options_.keys.Workers(model), options_.keys.WorkerExpiry(model)},
          {worker_id}),
      "deregister");
}

void RedisWorkerRegistry::ReadModelAsync(const std::string& model, ReadDone done) {
  if (Status s = ValidateKeyPart("read workers: model", model); !s.ok()) return done(s);
  options_.connection->RunScript(
      scripts::ReadWorkers(), {options_.keys.Workers(model), options_.keys.WorkerExpiry(model)}, {},
      [done = std::move(done)](ReplyResult reply) { done(ParseRead(reply)); });
}

Result<ModelCapacity> RedisWorkerRegistry::ReadModel(const std::string& model) {
  if (Status s = ValidateKeyPart("read workers: model", model); !s.ok()) return s;
  return ParseRead(options_.connection->CallScript(
      scripts::ReadWorkers(), {options_.keys.Workers(model), options_.keys.WorkerExpiry(model)},
      {}));
}

}  // namespace sluice::redis
