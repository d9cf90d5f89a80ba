#include "http/response_writer.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sluice::http {
namespace {

TEST(ResponseWriterTest, WritesStatusLineFieldsAndBody) {
  HttpResponse res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Request-Id", "req_1");
  res.body() = R"({"a":1})";
  res.keep_alive(true);
  res.prepare_payload();
  std::string out = "stale";
  SerializeResponse(res, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\n"
            "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(ResponseWriterTest, CloseAndHttp10KeepAliveAreCarriedByTheFields) {
  HttpResponse close{bhttp::status::service_unavailable, 11};
  close.keep_alive(false);
  close.prepare_payload();
  std::string out;
  SerializeResponse(close, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");

  HttpResponse old{bhttp::status::not_found, 10};
  old.keep_alive(true);
  old.prepare_payload();
  SerializeResponse(old, &out);
  EXPECT_EQ(out, "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseWriterTest, MatchesBeastsOwnSerializer) {
  HttpResponse res{bhttp::status::too_many_requests, 11};
  res.set(bhttp::field::retry_after, "3");
  res.set(bhttp::field::server, "sluice");
  res.body() = "x";
  res.prepare_payload();
  std::ostringstream beast_form;
  beast_form << res;
  std::string ours;
  SerializeResponse(res, &ours);
  EXPECT_EQ(ours, beast_form.str());
}

}  // namespace
}  // namespace sluice::http
