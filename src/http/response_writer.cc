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

}  // namespace sluice::http
