// RequestParser: Beast's HTTP/1 request parser with every limit a client
// could otherwise push (Beast 1.81 bounds the header block and the body, but
// neither the number of fields, nor chunk extensions, nor trailers).
//
// Builds an HttpRequest whose header fields live in a caller's arena (see
// types.h). Limits, all in Limits:
//   - the header block (request line + fields) <= header_limit_bytes
//     (error::header_limit),
//   - at most max_fields header fields and trailer fields together
//     (error::header_limit),
//   - each chunk's extensions <= chunk_extension_limit_bytes
//     (error::bad_chunk_extension),
//   - the body (decoded, chunked or not) <= body_limit_bytes
//     (error::body_limit).
// Trailer fields are counted and dropped (nothing reads them). What the
// parser buffers while it waits for a complete line (a chunk-size line, the
// trailer block) lives in the caller's read buffer: bound that buffer too
// (Session uses a flat_buffer with a maximum size; see session.h).
//
// Not thread-safe (one connection's value). Use with bhttp::async_read_some
// / read_some / put() like any basic_parser.
#pragma once

#include <cstdint>
#include <memory_resource>

#include <boost/beast/http/basic_parser.hpp>

#include "http/types.h"

namespace sluice::http {

class RequestParser final : public bhttp::basic_parser<true> {
 public:
  struct Limits {
    uint32_t header_limit_bytes = 16 << 10;
    uint32_t max_fields = 100;                   // header + trailer fields
    uint32_t chunk_extension_limit_bytes = 256;  // per chunk
    uint64_t body_limit_bytes = 1 << 20;
  };

  // `arena` holds the header fields; it must outlive the request (or the
  // request must be dropped first).
  RequestParser(const Limits& limits, std::pmr::memory_resource* arena);

  HttpRequest& get() { return request_; }
  // The parsed request; the parser must not be used afterwards.
  HttpRequest release() { return std::move(request_); }
  // Header and trailer fields seen so far.
  uint32_t fields() const { return fields_; }

 private:
  void on_request_impl(bhttp::verb method, boost::beast::string_view method_str,
                       boost::beast::string_view target, int version,
                       boost::beast::error_code& ec) override;
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(bhttp::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override;
  void on_header_impl(boost::beast::error_code& ec) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         boost::beast::error_code& ec) override;
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                            boost::beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, boost::beast::string_view body,
                                 boost::beast::error_code& ec) override;
  void on_finish_impl(boost::beast::error_code& ec) override {}

  const Limits limits_;
  HttpRequest request_;
  uint32_t fields_ = 0;
};

}  // namespace sluice::http
