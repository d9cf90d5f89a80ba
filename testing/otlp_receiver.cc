#include "testing/otlp_receiver.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace sluice::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

struct OtlpReceiver::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
};

namespace {

std::string Text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

// {"stringValue": "x"} -> "x"; {"intValue": "3"} -> "3"; ...
std::string AnyValue(const json::object& value) {
  for (const auto& [k, v] : value) return Text(v);
  return "";
}

std::map<std::string, std::string> AttributeMap(const json::object& o) {
  std::map<std::string, std::string> out;
  if (const json::value* a = o.if_contains("attributes")) {
    for (const json::value& kv : a->as_array()) {
      out[std::string(kv.at("key").as_string())] = AnyValue(kv.at("value").as_object());
    }
  }
  return out;
}

std::string Field(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v == nullptr ? "" : Text(*v);
}

// Throws on a body that is not OTLP JSON.
std::vector<ReceivedSpan> Decode(const std::string& body) {
  std::vector<ReceivedSpan> out;
  const json::value root = json::parse(body);
  for (const json::value& rs : root.at("resourceSpans").as_array()) {
    const auto resource = AttributeMap(rs.at("resource").as_object());
    for (const json::value& ss : rs.at("scopeSpans").as_array()) {
      for (const json::value& sv : ss.at("spans").as_array()) {
        const json::object& s = sv.as_object();
        ReceivedSpan r;
        r.trace_id = Field(s, "traceId");
        r.span_id = Field(s, "spanId");
        r.parent_span_id = Field(s, "parentSpanId");
        r.trace_state = Field(s, "traceState");
        r.name = Field(s, "name");
        r.kind = static_cast<int>(s.at("kind").to_number<int64_t>());
        r.start_unix_nanos = std::stoll(Field(s, "startTimeUnixNano"));
        r.end_unix_nanos = std::stoll(Field(s, "endTimeUnixNano"));
        r.attributes = AttributeMap(s);
        if (const json::value* e = s.if_contains("events")) {
          for (const json::value& ev : e->as_array())
            r.events.push_back(Field(ev.as_object(), "name"));
        }
        if (const json::value* l = s.if_contains("links")) {
          for (const json::value& lv : l->as_array()) {
            r.links.emplace_back(Field(lv.as_object(), "traceId"), Field(lv.as_object(), "spanId"));
          }
        }
        if (const json::value* st = s.if_contains("status")) {
          if (const json::value* code = st->as_object().if_contains("code")) {
            r.status_code = static_cast<int>(code->to_number<int64_t>());
          }
        }
        r.resource = resource;
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

}  // namespace

OtlpReceiver::OtlpReceiver() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  thread_ = std::thread([this] { Serve(); });
}

OtlpReceiver::~OtlpReceiver() {
  stopping_ = true;
  // Wake the accept: a connection of our own.
  boost::system::error_code ec;
  tcp::socket poke(impl_->ioc);
  poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  poke.close(ec);
  thread_.join();
}

std::string OtlpReceiver::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
}

std::vector<ReceivedSpan> OtlpReceiver::spans() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spans_;
}

bool OtlpReceiver::WaitFor(const std::function<bool(const std::vector<ReceivedSpan>&)>& done,
                           std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done(spans())) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void OtlpReceiver::Serve() {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket(impl_->ioc);
    impl_->acceptor.accept(socket, ec);
    if (ec || stopping_) continue;
    // A client that keeps its connection open without sending must not
    // hold the receiver (or its destructor) forever.
    timeval two_seconds{2, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &two_seconds,
                 sizeof(two_seconds));
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      bhttp::read(socket, buffer, req, ec);
      if (ec) break;
      bhttp::response<bhttp::string_body> res{bhttp::status::not_found, req.version()};
      if (req.method() == bhttp::verb::post && req.target() == "/v1/traces") {
        arrived_.fetch_add(1);
        for (int i = 0; i < 1'000 && held_ && !stopping_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        posts_.fetch_add(1);
        try {
          std::vector<ReceivedSpan> decoded = Decode(req.body());
          std::lock_guard<std::mutex> lock(mu_);
          for (auto& s : decoded) spans_.push_back(std::move(s));
        } catch (const std::exception&) {
          bad_posts_.fetch_add(1);
        }
        res.result(static_cast<bhttp::status>(status_.load()));
        res.set(bhttp::field::content_type, "application/json");
        res.body() = "{}";
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      bhttp::write(socket, res, ec);
      if (ec || !req.keep_alive()) break;
    }
    socket.close(ec);
  }
}

}  // namespace sluice::testing
