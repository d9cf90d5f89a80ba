#include "http/response_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <vector>

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

TEST(ResponseWriterTest, MarkLastOnConnectionSaysClose) {
  for (unsigned version : {10u, 11u}) {
    WireResponseBuilder b(400, version, /*keep_alive=*/true);
    b.Field("X-Request-Id", "req_1");
    WireResponse w = std::move(b).Finish("application/json", "{}");
    MarkLastOnConnection(&w);
    EXPECT_FALSE(w.keep_alive);
    WireResponseBuilder closing(400, version, /*keep_alive=*/false);
    closing.Field("X-Request-Id", "req_1");
    WireResponse want = std::move(closing).Finish("application/json", "{}");
    if (version == 11) {
      // Same fields; "Connection: close" right after the status line.
      EXPECT_EQ(w.bytes.find("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"), 0u) << w.bytes;
      EXPECT_EQ(w.bytes.size(), want.bytes.size());
    } else {
      EXPECT_EQ(w.bytes.find("Connection: keep-alive"), std::string::npos) << w.bytes;
      EXPECT_NE(w.bytes.find("Connection: close\r\n"), std::string::npos) << w.bytes;
    }
    const std::string once = w.bytes;
    MarkLastOnConnection(&w);  // already the last: unchanged
    EXPECT_EQ(w.bytes, once);
  }
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

TEST(ResponseWriterTest, BuilderMatchesTheSerializedBeastResponse) {
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {true, false}) {
      HttpResponse res{bhttp::status::ok, version};
      res.set(bhttp::field::server, "sluice");
      res.set("X-Request-Id", "req_1");
      res.set(bhttp::field::content_type, "application/json");
      res.keep_alive(keep_alive);
      res.body() = "{}";
      res.prepare_payload();
      WireResponseBuilder b(200, version, keep_alive);
      b.Field("X-Request-Id", "req_1");
      WireResponse built = std::move(b).Finish("application/json", "{}");
      EXPECT_EQ(built.keep_alive, keep_alive);
      // Same fields, possibly in another order: compare as sorted lines.
      auto lines = [](const std::string& wire) {
        std::vector<std::string> out;
        size_t start = 0;
        for (size_t end; (end = wire.find("\r\n", start)) != std::string::npos; start = end + 2) {
          out.push_back(wire.substr(start, end - start));
        }
        out.push_back(wire.substr(start));
        std::sort(out.begin(), out.end());
        return out;
      };
      EXPECT_EQ(lines(built.bytes), lines(ToWire(res).bytes)) << version << keep_alive;
    }
  }
}

}  // namespace
}  // namespace sluice::http
