// RunBench() against an in-process fake gateway on loopback: counts, the
// open-loop latency (no coordinated omission), drain timeouts, and the clear
// errors for an unreachable target and a rejected key.
#include "loadgen/bench_runner.h"

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include "loadgen/report.h"

namespace sluice::loadgen {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using ::testing::HasSubstr;

// Answers POST /v1/inference with 200 after `delay_ms` (401 for sk-bad), and
// GET /metrics (token "svc") with a batch histogram of size-1 batches, one
// per inference request so far.
class FakeGateway {
 public:
  struct Options {
    int delay_ms = 0;
    int answer_first = -1;  // answer only this many inference requests; -1 = all
  };

  explicit FakeGateway(Options options) : options_(options), acceptor_(ioc_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FakeGateway() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer timer;
    boost::beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    bhttp::response<bhttp::string_body> res;
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(s));
      sessions_.push_back(session);
      Read(session);
      Accept();
    });
  }

  void Read(std::shared_ptr<Session> s) {
    s->req = {};
    bhttp::async_read(s->socket, s->buffer, s->req,
                      [this, s](boost::system::error_code ec, size_t) {
                        if (!ec) Handle(s);
                      });
  }

  void Handle(std::shared_ptr<Session> s) {
    s->res = {};
    s->res.version(11);
    s->res.keep_alive(s->req.keep_alive());
    const std::string auth(s->req[bhttp::field::authorization]);
    if (s->req.target() == "/metrics") {
      const bool ok = auth == "Bearer svc";
      s->res.result(ok ? 200 : 401);
      const std::string n = std::to_string(inference_requests_);
      s->res.body() = "sluice_batch_size_bucket{model=\"m\",le=\"1\"} " + n +
                      "\nsluice_batch_size_bucket{model=\"m\",le=\"+Inf\"} " + n +
                      "\nsluice_batch_size_sum{model=\"m\"} " + n +
                      "\nsluice_batch_size_count{model=\"m\"} " + n +
                      "\nsluice_accelerator_utilization{model=\"m\"} 0.5\n";
      return Write(s, 0);
    }
    ++inference_requests_;
    if (options_.answer_first >= 0 && inference_requests_ > options_.answer_first) return;
    s->res.result(auth == "Bearer sk-bad" ? 401 : 200);
    s->res.set("Server-Timing", "queue;dur=0.100, accelerator;dur=0.200, gateway;dur=0.050");
    s->res.body() = "{}";
    Write(s, options_.delay_ms);
  }

  void Write(std::shared_ptr<Session> s, int delay_ms) {
    s->res.prepare_payload();
    s->timer.expires_after(std::chrono::milliseconds(delay_ms));
    s->timer.async_wait([this, s](boost::system::error_code) {
      bhttp::async_write(s->socket, s->res, [this, s](boost::system::error_code ec, size_t) {
        if (ec || !s->res.keep_alive()) return s->socket.close();
        Read(s);
      });
    });
  }

  Options options_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  int inference_requests_ = 0;                    // on the server thread only
  std::list<std::shared_ptr<Session>> sessions_;  // kept open until the end
  std::thread thread_;
};

BenchOptions Options(const std::string& url) {
  BenchOptions o;
  o.url = url;
  o.steps = {{2000, 500'000}};
  o.warmup_us = 200'000;
  o.connections = 8;
  o.threads = 2;
  o.service_token = "svc";
  o.drain_timeout_us = 2'000'000;
  o.workload.tiers =
      BuildTierMix(ParseWeightedList("free=70,paid=25,enterprise=5", false, "m").value(),
                   DemoKeys())
          .value();
  o.workload.models = {{"m", 1}};
  o.workload.input_bytes = {32, 64};
  return o;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

TEST(BenchRunnerTest, CountsEveryScheduledRequestAndTheGatewayOverhead) {
  FakeGateway gw({});
  int progress_calls = 0;
  auto r = RunBench(Options(gw.url()), [&](const ProgressSample&) { ++progress_calls; });
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Constant rate, two interleaved threads: exactly rate x duration, warm-up excluded.
  EXPECT_EQ(r->overall.counts.scheduled, 1000u);
  EXPECT_EQ(r->overall.counts.ok, 1000u);
  EXPECT_EQ(r->overall.counts.failed(), 0u);
  EXPECT_EQ(r->overall.latency_ns.count(), 1000u);
  uint64_t by_tier = 0;
  for (const SliceStats& t : r->tiers) by_tier += t.counts.ok;
  EXPECT_EQ(by_tier, 1000u);
  EXPECT_GT(r->tiers[0].counts.ok, r->tiers[1].counts.ok);  // 70 % vs 25 %
  EXPECT_EQ(r->gateway_overhead_ns.count(), 1000u);
  EXPECT_NEAR(r->gateway_overhead_ns.ValueAtQuantile(0.5), 50'000, 50'000 / 256.0);
  EXPECT_TRUE(r->gateway_scraped);
  ASSERT_EQ(r->gateway.size(), 1u);
  EXPECT_GT(r->gateway[0].batches, 800);
  EXPECT_EQ(r->gateway[0].mean_batch_size, 1);
  EXPECT_EQ(r->gateway[0].utilization_after, 0.5);
  // The generator is mostly on time (not asserted strictly: a busy shared
  // machine may preempt it now and then, and the report would say so).
  EXPECT_LT(r->generator.schedule_lag_ns.ValueAtQuantile(0.5), 1'000'000u) << FormatReportTable(*r);
  EXPECT_EQ(r->connections_open, 8u);
  EXPECT_GE(progress_calls, 0);  // at most ~1 per second; the run is short

  auto doc = boost::json::parse(FormatReportJson(*r)).as_object();
  EXPECT_EQ(doc.at("schema").as_string(), "sluice-bench/1");
  EXPECT_EQ(doc.at("overall").at("all").at("ok").to_number<uint64_t>(), 1000u);
  EXPECT_NEAR(doc.at("overall").at("all").at("offered_rps").as_double(), 2000, 1e-6);
  EXPECT_TRUE(doc.at("overall").at("tiers").as_object().contains("enterprise"));
  EXPECT_THAT(FormatReportTable(*r), HasSubstr("enterprise"));
}

TEST(BenchRunnerTest, LatencyCountsFromTheScheduleNotFromTheSend) {
  // One connection, 50 ms per answer: at most 20 answers/s for 100 offered/s.
  // A closed-loop tool would report 50 ms; the queue behind the connection
  // must show in the latency.
  FakeGateway gw({.delay_ms = 50});
  BenchOptions o = Options(gw.url());
  o.steps = {{100, 500'000}};
  o.warmup_us = 0;
  o.connections = 1;
  o.threads = 1;
  o.workload.tiers = {{"paid", 1, {"sk-paid-demo-0001"}}};
  o.drain_timeout_us = 5'000'000;
  auto r = RunBench(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const SliceStats& s = r->overall;
  EXPECT_EQ(s.counts.scheduled, 50u);
  EXPECT_EQ(s.counts.ok, 50u);
  // Request i is scheduled at 10i ms and answered at about 50(i+1) ms.
  EXPECT_GT(s.latency_ns.ValueAtQuantile(0.5), 800'000'000u);
  EXPECT_GT(s.latency_ns.max(), 1'800'000'000u);
  EXPECT_GE(r->generator.connection_waits, 45u);
  // The generator was on time; the server was not.
  EXPECT_LT(r->generator.schedule_lag_ns.ValueAtQuantile(0.5), 5'000'000u) << FormatReportTable(*r);
  EXPECT_NEAR(r->tiers[0].counts.ok / (r->measured_us / 1e6), 100, 1e-6);
}

TEST(BenchRunnerTest, UnansweredRequestsBecomeTimeoutsAfterTheDrain) {
  FakeGateway gw({.answer_first = 3});  // the preflight's three requests only
  BenchOptions o = Options(gw.url());
  o.steps = {{100, 300'000}};
  o.warmup_us = 0;
  o.connections = 4;
  o.threads = 1;
  o.drain_timeout_us = 300'000;
  const auto start = std::chrono::steady_clock::now();
  auto r = RunBench(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_LT(Seconds(start), 3.0);
  EXPECT_EQ(r->overall.counts.scheduled, 30u);
  EXPECT_EQ(r->overall.counts.timeouts, 30u);
  EXPECT_EQ(r->overall.counts.ok, 0u);
  EXPECT_TRUE(r->overall.latency_ns.empty());
}

TEST(BenchRunnerTest, AnUnreachableTargetIsAClearErrorNotAHang) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  const auto start = std::chrono::steady_clock::now();
  auto r = RunBench(Options("http://127.0.0.1:" + std::to_string(port)), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("cannot connect to 127.0.0.1:" + std::to_string(port)));
  EXPECT_LT(Seconds(start), 2.0);
}

TEST(BenchRunnerTest, ARejectedKeyStopsTheRunBeforeAnyLoad) {
  FakeGateway gw({});
  BenchOptions o = Options(gw.url());
  o.workload.tiers[1].keys = {"sk-bad"};
  auto r = RunBench(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("rejected the key of tier `paid` (401)"));
}

TEST(BenchRunnerTest, AWrongServiceTokenOnlyLeavesOutTheGatewaySection) {
  FakeGateway gw({});
  BenchOptions o = Options(gw.url());
  o.service_token = "wrong";
  o.steps = {{500, 200'000}};
  o.warmup_us = 0;
  auto r = RunBench(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->gateway_scraped);
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_THAT(r->warnings[0], HasSubstr("401 (check --service-token)"));
  EXPECT_EQ(r->overall.counts.ok, 100u);
}

TEST(BenchRunnerTest, BadOptionsAreInvalidArguments) {
  BenchOptions o = Options("https://example.com");
  EXPECT_THAT(RunBench(o, nullptr).status().message(), HasSubstr("only http:// is supported"));
  o = Options("http://127.0.0.1:1");
  o.threads = 0;
  EXPECT_EQ(RunBench(o, nullptr).status().code(), ErrorCode::kInvalidArgument);
  o = Options("not a url");
  EXPECT_EQ(RunBench(o, nullptr).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::loadgen
