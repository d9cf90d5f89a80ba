#include "app/backend_slots.h"

#include "backends/http/chat_backend.h"
#include "backends/http/http_backend.h"
#include "backends/sim/sim_backend.h"

namespace sluice {
namespace {

Status AddSimSlots(const ModelConfig& model, Executor* executor, BackendSlots* out) {
  const SimBackendConfig& sim = model.backend.sim;
  for (int d = 0; d < sim.devices; ++d) {
    SimBackend::Options o;
    o.model = model.name;
    o.model_version = model.version;
    o.device_index = d;
    o.fixed_latency_us = sim.fixed_latency_us;
    o.per_item_latency_us = sim.per_item_latency_us;
    o.jitter = sim.jitter;
    o.seed = sim.seed;
    o.executor = executor;
    if (model.task == ModelTask::kEmbeddings) o.embedding_dimensions = model.embedding_dimensions;
    auto b = SimBackend::Create(o);
    if (!b.ok()) return b.status();
    out->slots.push_back(std::move(b).value());
  }
  out->endpoint = "sim";
  return Status::Ok();
}

Status AddHttpSlots(IoContextPool& pool, const ModelConfig& model,
                    const std::vector<std::string>& urls, BackendSlots* out) {
  const HttpBackendConfig& http = model.backend.http;
  // A chat API takes one streamed conversation per call (ChatBackend).
  const bool chat = model.backend.kind == "openai" && http.openai_api == "chat";
  auto protocol = chat ? Result<http_backend::ProtocolKind>(http_backend::ProtocolKind::kGeneric)
                       : http_backend::ProtocolKindFor(model.backend.kind, http.openai_api);
  if (!protocol.ok()) return protocol.status();
  http_backend::TlsOptions tls;
  tls.ca_file = http.tls_ca_file;
  tls.cert_file = http.tls_cert_file;
  tls.key_file = http.tls_key_file;
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  for (size_t e = 0; e < urls.size(); ++e) {
    const std::string& url = urls[e];
    if (url.rfind("https://", 0) == 0 && !tls_context) {
      auto ctx = http_backend::MakeTlsContext(tls);
      if (!ctx.ok()) return ctx.status();
      tls_context = std::move(ctx).value();
    }
    for (int c = 0; c < http.connections_per_endpoint; ++c) {
      http_backend::HttpBackend::Options o;
      o.protocol = *protocol;
      o.url = url;
      o.model = http.remote_model.empty() ? model.name : http.remote_model;
      o.model_version = model.version;
      o.slot_index = static_cast<int>(out->slots.size());
      o.connect_timeout_ms = http.connect_timeout_ms;
      o.request_timeout_ms = http.request_timeout_ms;
      o.tls = tls;
      o.tls_context = tls_context;
      o.io_context = &pool.NextForConnection();
      if (chat) {
        auto b = http_backend::ChatBackend::Create(o);
        if (!b.ok()) return b.status();
        out->slots.push_back(std::move(b).value());
      } else {
        auto b = http_backend::HttpBackend::Create(o);
        if (!b.ok()) return b.status();
        out->slots.push_back(std::move(b).value());
      }
      out->slot_endpoints.push_back(e);
    }
  }
  out->endpoint_names = urls;
  out->endpoint = urls.size() == 1 ? urls[0] : std::to_string(urls.size()) + " endpoints";
  return Status::Ok();
}

}  // namespace

Result<BackendSlots> MakeBackendSlots(IoContextPool& pool, const ModelConfig& model,
                                      Executor* executor, std::optional<size_t> endpoint_index) {
  BackendSlots out;
  if (model.backend.kind == "sim") {
    if (Status s = AddSimSlots(model, executor, &out); !s.ok()) return s;
    return out;
  }
  std::vector<std::string> urls = model.backend.http.endpoints;
  if (endpoint_index) {
    if (*endpoint_index >= urls.size()) {
      return InvalidArgument("--endpoint-index " + std::to_string(*endpoint_index) + ": model '" +
                             model.name + "' has " + std::to_string(urls.size()) + " endpoint(s)");
    }
    urls = {urls[*endpoint_index]};
  }
  if (Status s = AddHttpSlots(pool, model, urls, &out); !s.ok()) return s;
  return out;
}

}  // namespace sluice
