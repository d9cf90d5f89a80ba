// Fuzzes the front door from raw connection bytes: RequestParser (fed in
// pieces, as reads from a socket would be) -> FrontDoor::CheckHeader() once
// a header is complete -> FrontDoor::Handle() once a request is complete,
// for every request the bytes hold (pipelining), like Session does.
//
// The domain is in memory: one MemoryQueue per model, a memory request log,
// a rate limiter and a dead-letter queue on a fake clock, rebuilt for every
// input so that one input's outcome never depends on the ones before.
// Requests still queued when the stream ends are answered as a backend would
// (OK, or dropped when their client went away), so the response path runs.
//
// Input layout: byte 0 = the piece size the stream is fed in (1..255; 0 =
// all at once); byte 1 bit 0 = the client hangs up before queued requests
// are answered; the rest is the stream of one connection. Credentials the
// seeds use: API keys "sk-fuzz-free", "sk-fuzz-paid"; service token
// "svc-fuzz".
//
// Checks beyond "no crash, no leak": every request handed to Handle() gets
// exactly one reply, and every reply parses as a complete HTTP response.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "common/crypto.h"
#include "core/authenticator.h"
#include "core/dead_letter_queue.h"
#include "core/inference_service.h"
#include "core/memory_queue.h"
#include "core/memory_request_log.h"
#include "http/front_door.h"
#include "http/request_metrics.h"
#include "http/request_parser.h"
#include "limits/memory_rate_limiter.h"
#include "metrics/registry.h"
#include "testing/fake_executor.h"

namespace {

using namespace sluice;  // NOLINT(google-build-using-namespace): a test driver
namespace bhttp = boost::beast::http;

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) std::abort();
  return std::move(r).value();
}

const std::vector<TierPolicy>& Tiers() {
  static const auto* tiers = [] {
    auto* t = new std::vector<TierPolicy>(2);
    (*t)[0].name = "free";
    (*t)[0].requests_per_minute = 5;
    (*t)[0].tokens_per_minute = 200;
    (*t)[1].name = "paid";
    (*t)[1].priority = 1;
    (*t)[1].latency_budget_us = 400'000;
    return t;
  }();
  return *tiers;
}

// What lives as long as the process: immutable or only counting.
struct Fixed {
  testing::FakeClock clock;
  std::unique_ptr<AuthenticatorSlot> auth;
  metrics::Registry registry;
  std::unique_ptr<http::RequestMetrics> metrics;

  Fixed() {
    spdlog::set_level(spdlog::level::off);  // refused tokens are logged: noise here
    Authenticator::Options a;
    a.tiers = Tiers();
    for (const char* tier : {"free", "paid"}) {
      Authenticator::Key& k = a.keys.emplace_back();
      k.id = std::string(tier) + "-key";
      k.tier = tier;
      k.sha256 = ToHex(Sha256(std::string("sk-fuzz-") + tier));
    }
    a.keys.back().requests_per_minute = 3;  // paid: a key override, soon exhausted
    a.service_token_sha256 = ToHex(Sha256("svc-fuzz"));
    auth = std::make_unique<AuthenticatorSlot>(
        std::shared_ptr<const Authenticator>(Must(Authenticator::Create(a))));
    metrics =
        std::make_unique<http::RequestMetrics>(&registry, std::vector<std::string>{"m", "other"},
                                               std::vector<std::string>{"free", "paid"}, &clock);
  }
};

// Records a watch registration; the client "hangs up" in HangUp().
class FakeWatch final : public http::ClientWatch {
 public:
  void OnClientGone(std::function<void()> fn) override { fns_.push_back(std::move(fn)); }
  void HangUp() {
    for (auto& fn : fns_) fn();
    fns_.clear();
  }

 private:
  std::vector<std::function<void()>> fns_;
};

// Aborts unless `wire` is one complete HTTP/1.x response.
void CheckResponse(const std::string& wire) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.body_limit(64 << 20);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(wire), ec);
  if (ec || !parser.is_done() || used != wire.size()) std::abort();
}

// One input's world: the domain pieces that keep state between requests.
class Connection {
 public:
  explicit Connection(Fixed* fixed) : fixed_(fixed) {
    for (int m = 0; m < 2; ++m) {
      MemoryQueue::Options q;
      q.capacity = 4;
      q.tiers = Tiers();
      queues_.push_back(Must(MemoryQueue::Create(q)));
    }
    MemoryRequestLog::Options lo;
    lo.capacity = 16;
    log_ = Must(MemoryRequestLog::Create(lo));
    MemoryRateLimiter::Options l;
    l.shard_count = 1;
    l.max_tracked_keys = 16;
    l.clock = &fixed->clock;
    limiter_ = Must(MemoryRateLimiter::Create(l));
    DeadLetterQueue::Options d;
    d.capacity = 4;
    dead_letters_ = Must(DeadLetterQueue::Create(d));
    InferenceService::Options s;
    s.tiers = Tiers();
    for (int m = 0; m < 2; ++m) {
      InferenceService::Model& model = s.models.emplace_back();
      model.name = m == 0 ? "m" : "other";
      model.version = model.name + "-v1";
      model.max_tokens_limit = m == 0 ? 100 : 4096;
      model.queue = queues_[m].get();
    }
    s.log = log_.get();
    s.limiter = limiter_.get();
    s.clock = &fixed->clock;
    service_ = Must(InferenceService::Create(s));

    http::FrontDoor::Options fd;
    fd.auth = fixed->auth.get();
    fd.service = service_.get();
    fd.log = log_.get();
    fd.metrics = fixed->metrics.get();
    fd.health = [this] {
      http::HealthSnapshot h;
      h.queue_depth = service_->TotalQueueDepth();
      http::ModelHealth& m = h.models.emplace_back();
      m.name = "m";
      m.queue_depth = queues_[0]->Depth();
      m.devices = 2;
      m.healthy_devices = 1;
      http::EndpointHealth& e = m.endpoints.emplace_back();
      e.name = "sim:m/0";
      e.breaker = BreakerState::kOpen;
      e.slots = 1;
      return h;
    };
    fd.registry = &fixed->registry;
    fd.set_device_enabled = [](const std::string& model, size_t device, bool enabled) {
      if (model != "m") return NotFound("model '" + model + "' is not served here");
      if (device >= 2) return InvalidArgument("device: out of range");
      return Status::Ok();
    };
    fd.dead_letters = dead_letters_.get();
    fd.watch_client_min_queue_depth = 0;  // watch every request
    front_door_ = std::make_unique<http::FrontDoor>(std::move(fd));
  }

  // Feeds the stream in pieces of `piece` bytes (0: all at once). Stops at
  // a parse error or a refused header, as Session closes the connection.
  void Feed(std::string_view stream, size_t piece, bool hang_up) {
    http::RequestParser::Limits limits;
    limits.header_limit_bytes = 16 << 10;
    limits.max_fields = 100;
    limits.body_limit_bytes = 1 << 20;
    if (piece == 0) piece = stream.size();
    std::string buffer;
    size_t fed = 0;
    while (true) {
      std::pmr::monotonic_buffer_resource arena;
      http::RequestParser parser(limits, &arena);
      bool checked = false;
      while (!parser.is_done()) {
        if (!buffer.empty()) {
          boost::beast::error_code ec;
          buffer.erase(0, parser.put(boost::asio::buffer(buffer), ec));
          if (ec && ec != bhttp::error::need_more) return Finish(hang_up);
        }
        if (parser.is_header_done() && !checked) {
          // Session asks before it reads any of the body.
          checked = true;
          if (!HeaderAccepted(parser.get())) return Finish(hang_up);
          parser.eager(true);
          continue;
        }
        if (parser.is_done()) break;
        if (fed == stream.size()) {
          // End of stream with a request half read: the connection closes.
          if (!parser.got_some()) return Finish(hang_up);
          boost::beast::error_code ec;
          parser.put_eof(ec);
          if (ec || !parser.is_done()) return Finish(hang_up);
          break;
        }
        size_t n = std::min(piece, stream.size() - fed);
        buffer.append(stream.substr(fed, n));
        fed += n;
      }
      ++handled_;
      front_door_->Handle(parser.release(), http::Reply(
                                                [this](http::WireResponse&& r) {
                                                  ++replied_;
                                                  CheckResponse(r.bytes);
                                                },
                                                &watch_));
      if (buffer.empty() && fed == stream.size()) return Finish(hang_up);
    }
  }

 private:
  // False when the front door refuses the request from its header alone.
  bool HeaderAccepted(const http::HttpRequest& header) {
    http::HeaderVerdict verdict = front_door_->CheckHeader(header);
    if (!verdict.refuse) return true;
    CheckResponse(http::ToWire(*verdict.refuse).bytes);
    return false;
  }

  // Answers what is queued, then checks that every request got one reply.
  void Finish(bool hang_up) {
    if (hang_up) watch_.HangUp();
    for (auto& q : queues_) {
      std::vector<RequestPtr> batch, dropped;
      q->PopBatch(100, fixed_->clock.Now(), &batch, &dropped);
      for (auto& r : batch) {
        InferenceOutcome o;
        o.output = "out:" + r->input;
        o.tokens_used = 3;
        o.model_version = "v1";
        o.batch_id = 1;
        o.batch_size = static_cast<uint32_t>(batch.size());
        r->Complete(std::move(o));
      }
      for (auto& r : dropped) {
        InferenceOutcome o;
        o.status = Status(ErrorCode::kCancelled, "client closed the connection");
        r->Complete(std::move(o));
      }
      if (q->Depth() != 0) std::abort();
    }
    // Destroying the front door waits for its request-log lookups (which
    // reply from another thread).
    front_door_.reset();
    if (replied_.load() != handled_) std::abort();
  }

  Fixed* fixed_;
  std::vector<std::unique_ptr<MemoryQueue>> queues_;
  std::unique_ptr<MemoryRequestLog> log_;
  std::unique_ptr<MemoryRateLimiter> limiter_;
  std::unique_ptr<DeadLetterQueue> dead_letters_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<http::FrontDoor> front_door_;
  FakeWatch watch_;
  size_t handled_ = 0;
  std::atomic<size_t> replied_{0};  // replies may come from a lookup thread
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixed* fixed = new Fixed();
  if (size < 2) return 0;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  Connection connection(fixed);
  connection.Feed(stream, data[0], (data[1] & 1) != 0);
  return 0;
}
