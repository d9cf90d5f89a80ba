#include "http/request_parser.h"

#include <boost/beast/http/error.hpp>

namespace sluice::http {

namespace beast = boost::beast;

RequestParser::RequestParser(const Limits& limits, std::pmr::memory_resource* arena)
    : limits_(limits),
      request_(std::piecewise_construct, std::make_tuple(),
               std::make_tuple(RequestAllocator(arena))) {
  header_limit(limits.header_limit_bytes);
  body_limit(limits.body_limit_bytes);
}

void RequestParser::on_request_impl(bhttp::verb method, beast::string_view method_str,
                                    beast::string_view target, int version, beast::error_code& ec) {
  request_.target(target);
  if (method != bhttp::verb::unknown) {
    request_.method(method);
  } else {
    request_.method_string(method_str);
  }
  request_.version(version);
}

void RequestParser::on_field_impl(bhttp::field name, beast::string_view name_string,
                                  beast::string_view value, beast::error_code& ec) {
  if (++fields_ > limits_.max_fields) {
    ec = bhttp::error::header_limit;
    return;
  }
  // Trailers (fields after the header) are counted, not kept.
  if (!is_header_done()) request_.insert(name, name_string, value);
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                      beast::error_code& ec) {
  // basic_parser already refused a Content-Length over the body limit.
  if (content_length) request_.body().reserve(static_cast<size_t>(*content_length));
}

std::size_t RequestParser::on_body_impl(beast::string_view body, beast::error_code& ec) {
  request_.body().append(body.data(), body.size());
  return body.size();
}

void RequestParser::on_chunk_header_impl(std::uint64_t size, beast::string_view extensions,
                                         beast::error_code& ec) {
  if (extensions.size() > limits_.chunk_extension_limit_bytes) {
    ec = bhttp::error::bad_chunk_extension;
  }
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t remain, beast::string_view body,
                                              beast::error_code& ec) {
  request_.body().append(body.data(), body.size());
  return body.size();
}

}  // namespace sluice::http
