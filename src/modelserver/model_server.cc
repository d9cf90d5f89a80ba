#include "modelserver/model_server.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "backends/sim/sim_model.h"
#include "common/asio_executor.h"
#include "modelserver/device_pool.h"
#include "modelserver/model_api.h"

namespace sluice::modelserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class Session;

struct ModelServer::State {
  State(asio::io_context& io, const Options& o, uint64_t seed)
      : ioc(io),
        options(o),
        acceptor(asio::make_strand(io)),
        executor(io),
        faults(o.faults, seed) {}

  asio::io_context& ioc;
  const Options options;
  tcp::acceptor acceptor;
  AsioExecutor executor;  // runs the simulated devices
  std::unique_ptr<DevicePool> pool;
  FaultInjector faults;
  std::mutex mu;
  std::vector<std::shared_ptr<Session>> hung;  // GUARDED_BY(mu): never answered, kept open
  bool stopped = false;                        // GUARDED_BY(mu)
  std::deque<std::string> traceparents;        // GUARDED_BY(mu): GET /admin/traceparents
  // Chat streams (GET /admin/streams).
  std::atomic<uint64_t> streams_started{0}, streams_finished{0}, streams_cancelled{0};
  // Inference requests (batches) answered 200, and their items (GET /admin/stats).
  std::atomic<uint64_t> batches_ok{0}, items_ok{0};
  uint16_t port = 0;  // bound port, set once by Create()
};

namespace {

std::string ErrorJson(std::string_view message) {
  return boost::json::serialize(boost::json::object{{"error", message}});
}

}  // namespace

// One client connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ModelServer::State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

  void Close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->stream_.close();
    });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(state_->options.body_limit_bytes);
    stream_.expires_after(std::chrono::milliseconds(state_->options.idle_timeout_ms));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return Reply(http::status::payload_too_large, ErrorJson("request body too large"), false);
    }
    if (ec) return stream_.close();  // closed, timed out or malformed: just drop it
    stream_.expires_never();
    request_ = parser_->release();
    keep_alive_ = request_.keep_alive();
    Route();
  }

  void Route() {
    std::string_view target = request_.target();
    target = target.substr(0, target.find('?'));
    const bool get = request_.method() == http::verb::get;
    const bool post = request_.method() == http::verb::post;
    if (target == "/health" || target == "/v2/health/ready") {
      return Reply(http::status::ok, R"({"status":"ok"})");
    }
    if (target == "/admin/faults" && (get || post)) return Faults(post);
    if (target == "/admin/traceparents" && get) {
      boost::json::array list;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        for (const std::string& t : state_->traceparents) list.emplace_back(t);
      }
      return Reply(http::status::ok,
                   boost::json::serialize(boost::json::object{{"traceparents", std::move(list)}}));
    }
    if (target == "/admin/stats" && get) {
      return Reply(http::status::ok, boost::json::serialize(
                                         boost::json::object{{"batches", state_->batches_ok.load()},
                                                             {"items", state_->items_ok.load()}}));
    }
    if (target == "/admin/streams" && get) {
      return Reply(http::status::ok, boost::json::serialize(boost::json::object{
                                         {"started", state_->streams_started.load()},
                                         {"finished", state_->streams_finished.load()},
                                         {"cancelled", state_->streams_cancelled.load()}}));
    }
    constexpr std::string_view kKServePrefix = "/v2/models/";
    constexpr std::string_view kKServeSuffix = "/infer";
    std::optional<Api> api;
    std::string_view path_model;
    if (target == "/v1/batch") api = Api::kBatch;
    if (target == "/v1/completions") api = Api::kCompletions;
    if (target == "/v1/embeddings") api = Api::kEmbeddings;
    if (target == "/v1/chat/completions") api = Api::kChat;
    if (target.size() > kKServePrefix.size() + kKServeSuffix.size() &&
        target.substr(0, kKServePrefix.size()) == kKServePrefix &&
        target.substr(target.size() - kKServeSuffix.size()) == kKServeSuffix) {
      api = Api::kKServe;
      path_model = target.substr(kKServePrefix.size(),
                                 target.size() - kKServePrefix.size() - kKServeSuffix.size());
    }
    if (!api) return Reply(http::status::not_found, ErrorJson("no such endpoint"));
    if (!post) return Reply(http::status::method_not_allowed, ErrorJson("use POST"));
    if (auto it = request_.find("traceparent"); it != request_.end()) {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->traceparents.emplace_back(it->value().substr(0, 128));
      if (state_->traceparents.size() > 256) state_->traceparents.pop_front();
    }
    Infer(*api, path_model);
  }

  void Faults(bool post) {
    modelserver::Faults f = state_->faults.Get();
    if (post) {
      if (Status s = ApplyFaultsJson(request_.body(), &f); !s.ok()) {
        return Reply(http::status::bad_request, ErrorJson(s.message()));
      }
      state_->faults.Set(f);
    }
    Reply(http::status::ok, FaultsToJson(f));
  }

  void Infer(Api api, std::string_view path_model) {
    Result<ApiRequest> parsed = ParseApiRequest(api, request_.body(), path_model);
    if (!parsed.ok()) return Reply(http::status::bad_request, ErrorJson(parsed.status().message()));
    if (parsed->model != state_->options.model) {
      return Reply(http::status::not_found,
                   ErrorJson("unknown model \"" + parsed->model + "\" (this server has \"" +
                             state_->options.model + "\")"));
    }
    FaultDecision fault = state_->faults.Draw(parsed->items.size());
    if (fault.hang) {
      std::lock_guard lock(state_->mu);
      if (!state_->stopped) state_->hung.push_back(shared_from_this());
      return;
    }
    if (fault.close_connection) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return stream_.close();
    }
    std::vector<RequestPtr> batch;
    for (const ApiItem& item : parsed->items) {
      auto r = std::make_shared<InferenceRequest>();
      r->input = item.input;
      r->params.max_tokens = item.max_tokens;
      batch.push_back(std::move(r));
    }
    state_->pool->Submit(std::move(batch), fault.added_latency_ms * 1000,
                         [self = shared_from_this(), request = std::move(parsed.value()),
                          fault = std::move(fault)](BatchResult&& result) mutable {
                           asio::post(self->stream_.get_executor(),
                                      [self, request = std::move(request), fault = std::move(fault),
                                       result = std::move(result)]() mutable {
                                        self->Answer(request, fault, std::move(result));
                                      });
                         });
  }

  void Answer(const ApiRequest& request, const FaultDecision& fault, BatchResult result) {
    if (fault.batch_error) {
      return Reply(
          http::status::internal_server_error,
          ErrorJson(fault.error_message.empty() ? "injected batch failure" : fault.error_message));
    }
    if (!result.status.ok() || result.items.size() != request.items.size()) {
      return Reply(http::status::internal_server_error, ErrorJson(result.status.message()));
    }
    std::vector<ItemReply> items(request.items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      if (fault.item_errors[i]) {
        if (request.api != Api::kBatch) {
          return Reply(
              http::status::internal_server_error,
              ErrorJson(fault.error_message.empty()
                            ? "injected item failure (this protocol has no per-item errors)"
                            : fault.error_message));
        }
        items[i].error =
            fault.error_message.empty() ? "injected item failure" : fault.error_message;
        continue;
      }
      items[i].output = std::move(result.items[i].output);
      items[i].tokens_used = result.items[i].tokens_used;
      if (request.api == Api::kEmbeddings) {
        items[i].embedding = sim::SimulateEmbedding(request.model, request.items[i].input,
                                                    state_->options.embedding_dims);
      }
    }
    state_->batches_ok.fetch_add(1);
    state_->items_ok.fetch_add(items.size());
    if (request.api == Api::kChat && request.stream) {
      return StreamChat(ChatStreamEvents(request, items[0].output, items[0].tokens_used));
    }
    Reply(http::status::ok, EncodeApiReply(request, items, result.model_version));
  }

  // Writes `events` as a chunked event stream, one per 1/stream rate.
  void StreamChat(std::vector<std::string> events) {
    state_->streams_started.fetch_add(1);
    events_ = std::move(events);
    next_event_ = 0;
    std::string head =
        "HTTP/1.1 200 OK\r\nServer: sluice-model-server\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    if (!keep_alive_) head += "Connection: close\r\n";
    head += "\r\n";
    WriteEvent(std::move(head), 2);
  }

  // Sends the next event (after `prefix`), then waits for the one after.
  // The first write holds the header, the role and the first word, so that
  // the time to the header is the time to the first token.
  void WriteEvent(std::string prefix = "", size_t count = 1) {
    stream_out_ = std::move(prefix);
    for (size_t i = 0; i < count && next_event_ < events_.size(); ++i) {
      const std::string data = "data: " + events_[next_event_++] + "\n\n";
      char size[20];
      snprintf(size, sizeof(size), "%zx\r\n", data.size());
      stream_out_ += std::string(size) + data + "\r\n";
    }
    const bool last = stream_out_.empty();
    if (last) stream_out_ = "0\r\n\r\n";
    stream_.expires_after(std::chrono::seconds(30));
    asio::async_write(stream_, asio::buffer(stream_out_),
                      [self = shared_from_this(), last](beast::error_code ec, size_t) {
                        if (ec) {  // the client left mid-stream
                          self->state_->streams_cancelled.fetch_add(1);
                          return self->stream_.close();
                        }
                        if (last) {
                          self->state_->streams_finished.fetch_add(1);
                          if (!self->keep_alive_) return self->stream_.close();
                          return self->DoRead();
                        }
                        self->timer_.expires_after(std::chrono::microseconds(static_cast<int64_t>(
                            1e6 / self->state_->options.stream_tokens_per_second)));
                        self->timer_.async_wait([self](beast::error_code) { self->WriteEvent(); });
                      });
  }

  void Reply(http::status status, std::string body, bool keep_alive = true) {
    auto response = std::make_shared<http::response<http::string_body>>(status, 11);
    response->set(http::field::server, "sluice-model-server");
    response->set(http::field::content_type, "application/json");
    response->keep_alive(keep_alive && keep_alive_);
    response->body() = std::move(body);
    response->prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, size_t) {
                        if (ec || !response->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->DoRead();
                      });
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_{stream_.get_executor()};  // paces a chat stream
  std::vector<std::string> events_;                   // a chat stream's events
  size_t next_event_ = 0;
  std::string stream_out_;  // the stream's bytes being written
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  bool keep_alive_ = true;
  std::shared_ptr<ModelServer::State> state_;
};

namespace {

void Accept(const std::shared_ptr<ModelServer::State>& state) {
  state->acceptor.async_accept(asio::make_strand(state->ioc),
                               [state](beast::error_code ec, tcp::socket socket) {
                                 if (ec == asio::error::operation_aborted) return;  // stopped
                                 if (!ec) {
                                   socket.set_option(tcp::no_delay(true), ec);
                                   std::make_shared<Session>(std::move(socket), state)->Start();
                                 }
                                 Accept(state);
                               });
}

}  // namespace

Result<std::unique_ptr<ModelServer>> ModelServer::Create(asio::io_context& ioc,
                                                         const Options& options) {
  if (options.model.empty()) return InvalidArgument("--model must not be empty");
  if (options.embedding_dims < 1 || options.embedding_dims > 65536) {
    return InvalidArgument("--embedding-dims must be between 1 and 65536");
  }
  if (options.idle_timeout_ms <= 0) return InvalidArgument("idle timeout must be > 0");
  if (!(options.stream_tokens_per_second > 0)) {
    return InvalidArgument("--stream-tokens-per-second must be > 0");
  }
  if (Status s = ValidateFaults(options.faults); !s.ok()) return s;
  Options o = options;
  if (o.model_version.empty()) o.model_version = o.model + "-sim";
  auto state = std::make_shared<State>(ioc, o, options.seed);
  DevicePool::Options p;
  p.model = o.model;
  p.model_version = o.model_version;
  p.devices = o.devices;
  p.fixed_latency_us = o.fixed_latency_us;
  p.per_item_latency_us = o.per_item_latency_us;
  p.jitter = o.jitter;
  p.seed = o.seed;
  p.executor = &state->executor;
  auto pool = DevicePool::Create(p);
  if (!pool.ok()) return pool.status();
  state->pool = std::move(pool.value());

  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(o.listen_address, ec);
  if (ec) return InvalidArgument("bad listen address `" + o.listen_address + "`");
  const tcp::endpoint endpoint(address, o.port);
  state->acceptor.open(endpoint.protocol(), ec);
  if (!ec) state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(endpoint, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + o.listen_address + ":" + std::to_string(o.port) +
                       ": " + ec.message());
  }
  state->port = state->acceptor.local_endpoint(ec).port();
  Accept(state);
  return std::unique_ptr<ModelServer>(new ModelServer(std::move(state)));
}

ModelServer::~ModelServer() { Stop(); }

uint16_t ModelServer::port() const { return state_->port; }

FaultInjector& ModelServer::faults() { return state_->faults; }

void ModelServer::Stop() {
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> hung;
  {
    std::lock_guard lock(state_->mu);
    state_->stopped = true;
    hung.swap(state_->hung);
  }
  for (const auto& session : hung) session->Close();
}

}  // namespace sluice::modelserver
