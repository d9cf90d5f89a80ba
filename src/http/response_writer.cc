#include "http/response_writer.h"

#include <charconv>

namespace sluice::http {

void SerializeResponse(const HttpResponse& response, std::string* out) {
  out->clear();
  std::string_view reason = response.reason();
  if (reason.empty()) reason = bhttp::obsolete_reason(response.result());
  out->append(response.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char code[8];
  out->append(code, std::to_chars(code, code + sizeof(code), response.result_int()).ptr);
  out->push_back(' ');
  out->append(reason);
  out->append("\r\n");
  for (const auto& field : response) {
    out->append(field.name_string());
    out->append(": ");
    out->append(field.value());
    out->append("\r\n");
  }
  out->append("\r\n");
  out->append(response.body());
}

WireResponse ToWire(const HttpResponse& response) {
  WireResponse w;
  w.keep_alive = response.keep_alive();
  w.status = response.result_int();
  SerializeResponse(response, &w.bytes);
  return w;
}

void MarkLastOnConnection(WireResponse* response) {
  if (!response->keep_alive) return;
  response->keep_alive = false;
  std::string& b = response->bytes;
  constexpr std::string_view kKeepAlive = "Connection: keep-alive\r\n";
  constexpr std::string_view kClose = "Connection: close\r\n";
  const size_t header_end = b.find("\r\n\r\n");
  if (header_end == std::string::npos) return;
  const size_t keep = b.find(kKeepAlive);
  if (keep != std::string::npos && keep < header_end) {
    b.replace(keep, kKeepAlive.size(), kClose);
  } else {
    b.insert(b.find("\r\n") + 2, kClose);  // after the status line
  }
}

WireResponseBuilder::WireResponseBuilder(int status, unsigned version, bool keep_alive,
                                         size_t body_hint) {
  out_.keep_alive = keep_alive;
  out_.status = status;
  std::string& o = out_.bytes;
  o.reserve(256 + body_hint);
  o.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char code[8];
  o.append(code, std::to_chars(code, code + sizeof(code), status).ptr);
  o.push_back(' ');
  o.append(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  o.append("\r\nServer: sluice\r\n");
  if (version == 10 && keep_alive) o.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) o.append("Connection: close\r\n");
}

void WireResponseBuilder::Field(std::string_view name, std::string_view value) {
  out_.bytes.append(name).append(": ").append(value).append("\r\n");
}

WireResponse WireResponseBuilder::Finish(std::string_view content_type, std::string_view body) && {
  std::string& o = out_.bytes;
  o.append("Content-Type: ").append(content_type).append("\r\nContent-Length: ");
  char len[24];
  o.append(len, std::to_chars(len, len + sizeof(len), body.size()).ptr);
  o.append("\r\n\r\n").append(body);
  return std::move(out_);
}

}  // namespace sluice::http
