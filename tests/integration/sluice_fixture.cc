#include "tests/integration/sluice_fixture.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "backends/sim/sim_model.h"
#include "common/crypto.h"
#include "tests/integration/prometheus_text.h"

#ifndef SLUICE_BINARY
#error "SLUICE_BINARY must name the sluice executable"
#endif

namespace sluice::testing {
namespace {

namespace json = boost::json;

const json::value* Field(const json::value& v, std::string_view name) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(name);
}

std::optional<int64_t> AsInt(const json::value* v) {
  if (v == nullptr || !v->is_number()) return std::nullopt;
  boost::system::error_code ec;
  auto n = v->to_number<int64_t>(ec);
  if (ec) return std::nullopt;
  return n;
}

}  // namespace

std::string TestConfig::Yaml() const {
  std::ostringstream y;
  y << "server:\n"
    << "  listen_address: 127.0.0.1\n"
    << "  port: 8080\n"
    << "  io_threads: " << io_threads << "\n"
    << "  max_connections: 10000\n"
    << "  body_limit_bytes: " << body_limit_bytes << "\n"
    << "  header_limit_bytes: " << header_limit_bytes << "\n"
    << "  read_timeout_ms: 10000\n"
    << "  idle_timeout_ms: 60000\n"
    << "  drain_timeout_ms: " << drain_timeout_ms << "\n"
    << "  service_token_sha256: "
       "8c90d0fec7210415e58a828489f66b8dc71bbb6c25527bcc1288c8370bf00a4e\n"
    << "  recent_requests: " << recent_requests << "\n"
    << "  watch_client_min_queue_depth: " << watch_client_min_queue_depth << "\n"
    << "  max_connections_per_client: " << max_connections_per_client << "\n"
    << "  unauthenticated_memory_limit_bytes: " << unauthenticated_memory_limit_bytes << "\n";
  if (admin_listener) y << "admin:\n  listen_address: 127.0.0.1\n  port: 0\n";
  if (!tracing_endpoint.empty()) {
    y << "tracing:\n  otlp_endpoint: " << tracing_endpoint
      << "\n  sample_ratio: " << tracing_sample_ratio << "\n  export_interval_ms: 100\n";
  }
  y << "request_log:\n"
    << "  backend: " << request_log << "\n";
  if (!sqlite_path.empty()) y << "  path: " << sqlite_path << "\n";
  if (!postgres_url.empty()) {
    y << "  url: " << postgres_url << "\n"
      << "  flush_interval_ms: 50\n";
  }
  y << "async:\n"
    << "  result_ttl_ms: " << async_result_ttl_ms << "\n"
    << "  max_bytes: " << async_max_bytes << "\n"
    << "  max_wait_ms: " << async_max_wait_ms << "\n";
  y << "queue:\n"
    << "  ordering: edf\n"
    << "admission:\n"
    << "  enabled: " << (admission ? "true" : "false") << "\n"
    << "  target_utilization: " << target_utilization << "\n"
    << "tiers:\n";
  const char* names[] = {"enterprise", "paid", "free"};
  const TestTier* tiers[] = {&enterprise_tier, &paid_tier, &free_tier};
  for (int i = 0; i < 3; ++i) {
    const TestTier& t = *tiers[i];
    y << "  - name: " << names[i] << "\n"
      << "    priority: " << 2 - i << "\n"
      << "    latency_budget_ms: "
      << (t.latency_budget_ms >= 0 ? t.latency_budget_ms : latency_budget_ms) << "\n"
      << "    max_queue_age_ms: " << max_queue_age_ms << "\n"
      << "    total_timeout_ms: " << total_timeout_ms << "\n"
      << "    requests_per_minute: " << t.requests_per_minute << "\n"
      << "    tokens_per_minute: " << t.tokens_per_minute << "\n";
    if (t.max_queue_depth >= 0) y << "    max_queue_depth: " << t.max_queue_depth << "\n";
  }
  y << "models:\n"
    << "  - name: " << kModel << "\n"
    << "    version: " << kModelVersion << "\n"
    << "    max_batch_size: " << max_batch_size << "\n"
    << "    max_batch_delay_us: " << max_batch_delay_us << "\n"
    << "    queue_capacity: " << queue_capacity << "\n"
    << "    accelerator_timeout_ms: " << accelerator_timeout_ms << "\n"
    << "    max_tokens_limit: " << max_tokens_limit << "\n"
    << "    default_max_tokens: " << kDefaultMaxTokens << "\n"
    << "    deterministic: " << (deterministic ? "true" : "false") << "\n"
    << "    collapse: " << (collapse ? "true" : "false") << "\n";
  if (cache) {
    y << "    cache:\n"
      << "      enabled: true\n"
      << "      ttl_ms: " << cache_ttl_ms << "\n"
      << "      max_bytes: " << cache_max_bytes << "\n";
  }
  if (!backend_yaml.empty()) {
    y << backend_yaml;
  } else {
    y << "    backend:\n"
      << "      kind: sim\n"
      << "      devices: " << devices << "\n"
      << "      fixed_latency_us: " << fixed_latency_us << "\n"
      << "      per_item_latency_us: " << per_item_latency_us << "\n"
      << "      jitter: 0\n"
      << "      seed: 1\n";
  }
  y << "keys:\n"
    << "  - id: demo-free\n"
    << "    tier: free\n"
    << "    sha256: ba8510809b719211000410413fad8dfa3470e9b500c4638729b97a635bec3415\n"
    << "  - id: demo-paid\n"
    << "    tier: paid\n"
    << "    sha256: 22342c234196f5922ad04af2c75596f607d349e42d508f91e9ee13580f7ee3f6\n"
    << "  - id: demo-enterprise\n"
    << "    tier: enterprise\n"
    << "    sha256: c0dbf06b5c71d8643fd110603b3948a69c05aeaeeb806bbd86dd5214973081f6\n";
  for (const TestKey& k : extra_keys) {
    y << "  - id: " << k.id << "\n"
      << "    tier: " << k.tier << "\n"
      << "    sha256: " << ToHex(Sha256(k.secret)) << "\n";
    if (k.requests_per_minute >= 0) {
      y << "    requests_per_minute: " << k.requests_per_minute << "\n";
    }
    if (k.tokens_per_minute >= 0) {
      y << "    tokens_per_minute: " << k.tokens_per_minute << "\n";
    }
  }
  return y.str();
}

std::string InferenceBody(std::string_view model, std::string_view input,
                          std::optional<int> max_tokens) {
  json::object body;
  body["model"] = model;
  body["input"] = input;
  if (max_tokens) body["parameters"] = json::object{{"max_tokens", *max_tokens}};
  return json::serialize(body);
}

LoadRequest InferenceRequest(std::string_view key, std::string_view input,
                             std::optional<int> max_tokens, Headers extra_headers) {
  LoadRequest r;
  r.body = InferenceBody(kModel, input, max_tokens);
  r.headers = std::move(extra_headers);
  r.headers.push_back(Bearer(key));
  return r;
}

bool IsRequestId(std::string_view id) {
  if (id.size() != 36 || !id.starts_with("req_")) return false;
  for (char c : id.substr(4)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

::testing::AssertionResult IsError(int status, std::string_view body, int want_status,
                                   std::string_view want_code) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure() << why << " (want " << want_status << " " << want_code
                                         << "; got " << status << " " << body << ")";
  };
  if (status != want_status) return fail("wrong status");
  json::value v = ParseJsonOrNull(body);
  const json::value* error = Field(v, "error");
  if (error == nullptr || !error->is_object()) return fail("body is not {\"error\": {...}}");
  const json::value* code = Field(*error, "code");
  if (code == nullptr || !code->is_string() || code->as_string() != want_code) {
    return fail("wrong error.code");
  }
  const json::value* message = Field(*error, "message");
  if (message == nullptr || !message->is_string() || message->as_string().empty()) {
    return fail("error.message missing or empty");
  }
  // Requests refused before admission (parse, auth, routing) have no id yet
  // and carry null; admitted ones (503/504 after queueing) carry their id.
  const json::value* id = Field(*error, "request_id");
  if (id == nullptr || !(id->is_null() || (id->is_string() && IsRequestId(id->as_string())))) {
    return fail("error.request_id missing, or neither null nor req_<32 hex>");
  }
  return ::testing::AssertionSuccess();
}

std::optional<std::string> StringField(const json::value& v, std::string_view key) {
  const json::value* f = Field(v, key);
  if (f == nullptr || !f->is_string()) return std::nullopt;
  return std::string(f->as_string());
}

std::optional<double> NumberField(const json::value& v, std::string_view key) {
  const json::value* f = Field(v, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->to_number<double>();
}

std::string ErrorRequestId(std::string_view body) {
  json::value v = ParseJsonOrNull(body);
  const json::value* error = Field(v, "error");
  return error ? StringField(*error, "request_id").value_or("") : "";
}

std::string ErrorMessage(std::string_view body) {
  json::value v = ParseJsonOrNull(body);
  const json::value* error = Field(v, "error");
  const json::value* message = error ? Field(*error, "message") : nullptr;
  if (message == nullptr || !message->is_string()) return "";
  return std::string(message->as_string());
}

::testing::AssertionResult IsCompletion(int status, std::string_view body, std::string_view input,
                                        int max_tokens) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure() << why << " (input \"" << input << "\", max_tokens "
                                         << max_tokens << "; got " << status << " " << body << ")";
  };
  if (status != 200) return fail("status is not 200");
  json::value v = ParseJsonOrNull(body);
  const json::value* id = Field(v, "request_id");
  if (id == nullptr || !id->is_string() || !IsRequestId(id->as_string())) {
    return fail("request_id missing or not req_<32 hex>");
  }
  sim::SimCompletion want = sim::SimulateCompletion(kModel, input, max_tokens);
  const json::value* output = Field(v, "output");
  if (output == nullptr || !output->is_string() || output->as_string() != want.output) {
    return fail("output is not the simulator's \"" + want.output + "\"");
  }
  const json::value* metadata = Field(v, "metadata");
  if (metadata == nullptr || !metadata->is_object()) return fail("metadata missing");
  if (AsInt(Field(*metadata, "tokens_used")) != static_cast<int64_t>(want.tokens_used)) {
    return fail("metadata.tokens_used is not " + std::to_string(want.tokens_used));
  }
  std::optional<int64_t> latency = AsInt(Field(*metadata, "latency_ms"));
  if (!latency || *latency < 0) return fail("metadata.latency_ms missing or negative");
  const json::value* version = Field(*metadata, "model_version");
  if (version == nullptr || !version->is_string() || version->as_string() != kModelVersion) {
    return fail("metadata.model_version is not " + std::string(kModelVersion));
  }
  return ::testing::AssertionSuccess();
}

void SendInference(boost::asio::ip::tcp::socket& socket, uint16_t port, const std::string& input) {
  namespace asio = boost::asio;
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  std::string body = InferenceBody(kModel, input);
  std::string request =
      "POST /v1/inference HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
      std::string(kPaidKey) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request));
}

std::pair<int, std::string> RunShell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) output.append(buf, n);
  return {::pclose(pipe), output};
}

std::string FreshTempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sluice-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::pair<int, std::string> HeadlessChromium(const std::string& url, const std::string& action,
                                             const std::string& profile, int seconds) {
  return RunShell(
      "timeout 120 chromium --headless=new --no-sandbox --disable-gpu "
      "--disable-dev-shm-usage --no-first-run --hide-scrollbars "
      "--user-data-dir='" +
      profile + "' --window-size=1400,1300 --virtual-time-budget=" +
      std::to_string(seconds * 1000) + " " + action + " '" + url + "' 2>/dev/null");
}

double DomAttribute(const std::string& dom, const std::string& id, const std::string& attribute) {
  std::smatch m;
  const std::regex element("<[a-z]+ id=\"" + id + "\"[^>]*>");
  if (!std::regex_search(dom, m, element)) return -1;
  const std::string tag = m.str();
  const std::regex value(attribute + "=\"([0-9.e+-]+)\"");
  if (!std::regex_search(tag, m, value)) return -1;
  return std::stod(m[1].str());
}

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const int64_t max_calls = timeout / std::max(interval, std::chrono::milliseconds(1)) + 2;
  for (int64_t i = 0; i < max_calls; ++i) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return false;
}

int ConnectRaw(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string ReadUntilClose(int fd, std::chrono::milliseconds limit, bool* closed) {
  using Clock = std::chrono::steady_clock;
  std::string got;
  *closed = false;
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

void SluiceTest::ExpectStillServing() {
  auto client = NewClient();
  Result<Response> r =
      client->Post("/v1/inference", InferenceBody(kModel, "still here"), {Bearer(kPaidKey)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
}

void SluiceTest::StartSluiceWithYaml(std::string yaml, SluiceProcessOptions options) {
  options.binary_path = SLUICE_BINARY;
  options.config_yaml = std::move(yaml);
  process_ = std::make_unique<SluiceProcess>(std::move(options));
  Status started = process_->Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
}

int64_t SluiceTest::QueueDepth(HttpClient& client) {
  Result<Response> r = client.Get("/internal/health", {Bearer(kServiceToken)});
  if (!r.ok() || r->status != 200) return -1;
  json::value v = r->Json();
  return AsInt(Field(v, "queue_depth")).value_or(-1);
}

json::value SluiceTest::Health(HttpClient& client) {
  Result<Response> r = client.Get("/internal/health", {Bearer(kServiceToken)});
  if (!r.ok() || r->status != 200) return nullptr;
  return r->Json();
}

std::optional<std::string> SluiceTest::Metrics(HttpClient& client) {
  Result<Response> r = client.Get("/metrics", {Bearer(kServiceToken)});
  if (!r.ok() || r->status != 200) return std::nullopt;
  return std::move(r->body);
}

double SluiceTest::ScrapeSum(std::string_view name,
                             const std::map<std::string, std::string>& match) {
  auto client = NewClient();
  std::optional<std::string> text = Metrics(*client);
  EXPECT_TRUE(text.has_value());
  std::vector<MetricSample> samples =
      ParsePrometheusText(text.value_or("")).value_or(std::vector<MetricSample>{});
  return SumSamples(samples, name, match).value_or(0);
}

std::string DevicePath(std::string_view model, int index) {
  return "/internal/models/" + std::string(model) + "/devices/" + std::to_string(index);
}

json::value ModelHealth(const json::value& health) {
  const json::value* models = Field(health, "models");
  if (models == nullptr || !models->is_array()) return nullptr;
  for (const json::value& m : models->as_array()) {
    if (StringField(m, "name") == kModel) return m;
  }
  return nullptr;
}

json::value SluiceTest::WaitForFinalRecord(HttpClient& client, std::string_view id,
                                           std::chrono::milliseconds timeout) {
  json::value last;
  PollUntil(
      [&] {
        Result<Response> r =
            client.Get("/internal/requests/" + std::string(id), {Bearer(kServiceToken)});
        if (!r.ok()) return true;  // give up: the caller's checks report it
        last = r->Json();
        if (r->status != 200) return true;
        std::optional<std::string> status = StringField(last, "status");
        return status == "completed" || status == "failed";
      },
      timeout);
  return last;
}

}  // namespace sluice::testing
