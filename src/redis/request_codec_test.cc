#include "redis/request_codec.h"

#include <gtest/gtest.h>

#include "testing/fake_executor.h"

namespace sluice::redis {
namespace {

WireRequest Sample() {
  WireRequest r;
  r.id = "req_00000001deadbeef";
  r.gateway_id = "gw-1";
  r.key_id = "key-42";
  r.tier = 2;
  r.tier_name = "enterprise";
  r.model = "llama";
  r.input = "hello \"world\"\n\xe2\x9c\x93";
  r.max_tokens = 64;
  r.temperature = 0.25;
  r.params_json = R"({"max_tokens":64,"top_p":0.9})";
  r.arrival_us = 1'714'000'000'123'456;
  r.dispatch_deadline_us = 1'714'000'002'123'456;
  r.total_deadline_us = 1'714'000'004'123'456;
  r.charged_tokens = 70;
  r.tokens_per_minute = 9'000;
  r.async = true;
  r.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  return r;
}

TEST(RequestCodecTest, EntryRoundTripsEveryField) {
  const WireRequest in = Sample();
  Result<WireRequest> out = DecodeEntry(EncodeEntry(in), in.id, in.model);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->gateway_id, in.gateway_id);
  EXPECT_EQ(out->key_id, in.key_id);
  EXPECT_EQ(out->tier, in.tier);
  EXPECT_EQ(out->tier_name, in.tier_name);
  EXPECT_EQ(out->input, in.input);
  EXPECT_EQ(out->max_tokens, in.max_tokens);
  ASSERT_TRUE(out->temperature.has_value());
  EXPECT_DOUBLE_EQ(*out->temperature, 0.25);
  EXPECT_EQ(out->params_json, in.params_json);
  EXPECT_EQ(out->arrival_us, in.arrival_us);  // 16 digits survive exactly
  EXPECT_EQ(out->dispatch_deadline_us, in.dispatch_deadline_us);
  EXPECT_EQ(out->total_deadline_us, in.total_deadline_us);
  EXPECT_EQ(out->charged_tokens, in.charged_tokens);
  EXPECT_EQ(out->tokens_per_minute, 9'000);
  EXPECT_TRUE(out->async);
  EXPECT_EQ(out->traceparent, in.traceparent);
  EXPECT_EQ(out->attempts, 0u);
}

TEST(RequestCodecTest, ATraceparentThatIsNotOneReadsAsNone) {
  WireRequest in = Sample();
  in.traceparent = "00-zz";
  Result<WireRequest> out = DecodeEntry(EncodeEntry(in), in.id, in.model);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->traceparent, "");
}

TEST(RequestCodecTest, QueueEntryCarriesTheSchedulingPrefixAndAPayloadWithoutRepeats) {
  const WireRequest in = Sample();
  const std::string entry = EncodeEntry(in);
  EXPECT_EQ(entry.rfind("2|1714000002123456|1714000000123456|0|gw-1|{\"key\":", 0), 0u) << entry;
  // The id (the hash field), the model (the key), the gateway, tier,
  // deadline and arrival (the prefix) are not repeated in the payload.
  const std::string payload = entry.substr(entry.find('{'));
  for (const char* repeated : {"req_00000001deadbeef", "llama", "gw-1", "1714000002123456",
                               "1714000000123456", "\"t\":", "\"id\":", "\"m\":"}) {
    EXPECT_EQ(payload.find(repeated), std::string::npos) << repeated;
  }
  // The reaper rewrites attempts in the prefix; the payload is untouched.
  Result<WireRequest> retried =
      DecodeEntry("2|1714000002123456|1714000000123456|3|gw-1|" + payload, in.id, in.model);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->attempts, 3u);
  EXPECT_EQ(retried->input, in.input);
}

TEST(RequestCodecTest, MalformedEntriesAreRefusedWithTheFieldNamed) {
  const std::string payload = EncodeEntry(Sample()).substr(EncodeEntry(Sample()).find('{'));
  const std::pair<std::string, std::string> cases[] = {
      {"", "queue entry: malformed prefix"},
      {"2|1|2|0|gw", "queue entry: malformed prefix"},
      {"x|1|2|0|gw|" + payload, "queue entry: malformed tier"},
      {"2|1.5|2|0|gw|" + payload, "queue entry: malformed dispatch deadline"},
      {"2|1|-2|0|gw|" + payload, "queue entry: malformed arrival"},
      {"2|1|2|x|gw|" + payload, "queue entry: malformed attempts"},
      {"2|4000000000000001|2|0|gw|" + payload, "queue entry: malformed dispatch deadline"},
      {"2|4000000000000001|2|0|gw|not json", "queue entry: malformed dispatch deadline"},
      {"2|1|2|0|gw|not json", "request: invalid JSON: syntax error"},
      {"2|1|2|0|gw|[1,2]", "request: not a JSON object"},
      {"2|1|2|0|gw|{\"key\":\"k\"}", "request: field \"tn\" missing or of the wrong type"},
  };
  for (const auto& [entry, message] : cases) {
    Result<WireRequest> r = DecodeEntry(entry, "req_1", "llama");
    ASSERT_FALSE(r.ok()) << entry;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << entry;
    EXPECT_EQ(r.status().message(), message) << entry;
  }
  std::string wrong_type = "2|1|2|0|gw|" + payload;
  wrong_type.replace(wrong_type.find("\"mt\":64"), 7, "\"mt\":\"64\"");
  Result<WireRequest> r = DecodeEntry(wrong_type, "req_1", "llama");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "request: field \"mt\" missing or of the wrong type");
  for (const char* temperature : {"2.5", "-1", "6666666666666666666666666666666666660000000"}) {
    std::string hot = "2|1|2|0|gw|" + payload;
    hot.replace(hot.find("\"temp\":0.25"), 11, std::string("\"temp\":") + temperature);
    r = DecodeEntry(hot, "req_1", "llama");
    ASSERT_FALSE(r.ok()) << temperature;
    EXPECT_EQ(r.status().message(), "request: field \"temp\" missing or of the wrong type");
  }
  // A value of full precision reads back to 6 decimals, which encode and
  // decode to themselves.
  std::string precise = "2|1|2|0|gw|" + payload;
  precise.replace(precise.find("\"temp\":0.25"), 11, "\"temp\":0.12345678901234567");
  r = DecodeEntry(precise, "req_1", "llama");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->temperature, 0.123457);
  Result<WireRequest> again = DecodeEntry(EncodeEntry(*r), "req_1", "llama");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(EncodeEntry(*again), EncodeEntry(*r));
  std::string not_a_flag = "2|1|2|0|gw|" + payload;
  not_a_flag.replace(not_a_flag.find("\"as\":1"), 6, "\"as\":\"1\"");
  r = DecodeEntry(not_a_flag, "req_1", "llama");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "request: field \"as\" missing or of the wrong type");
  // Any other integer is a later encoder's async request, not an error.
  std::string later = "2|1|2|0|gw|" + payload;
  later.replace(later.find("\"as\":1"), 6, "\"as\":2");
  r = DecodeEntry(later, "req_1", "llama");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->async);
}

TEST(RequestCodecTest, OptionalFieldsAreOmittedAndCompact) {
  WireRequest in = Sample();
  in.temperature.reset();
  in.params_json.clear();
  in.tokens_per_minute = 0;
  in.async = false;
  in.traceparent.clear();
  const std::string entry = EncodeEntry(in);
  EXPECT_EQ(entry.find("temp"), std::string::npos);
  EXPECT_EQ(entry.find("\"p\""), std::string::npos);
  EXPECT_EQ(entry.find("tpm"), std::string::npos);
  EXPECT_EQ(entry.find(": "), std::string::npos);  // compact: no padding
  Result<WireRequest> out = DecodeEntry(entry, in.id, in.model);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->temperature.has_value());
  EXPECT_TRUE(out->params_json.empty());
  EXPECT_EQ(out->tokens_per_minute, 0);
  EXPECT_FALSE(out->async);
  EXPECT_EQ(entry,
            "2|1714000002123456|1714000000123456|0|gw-1|{\"key\":\"key-42\",\"tn\":\"enterprise\","
            "\"in\":\"hello \\\"world\\\"\\n\xe2\x9c\x93\",\"mt\":64,\"td\":1714000004123456,"
            "\"ct\":70}");
}

TEST(RequestCodecTest, ResultBatchRoundTrips) {
  WireResult ok;
  ok.id = "a";
  ok.output = "out";
  ok.tokens_used = 12;
  ok.model_version = "v3";
  ok.batch_id = 99;
  ok.batch_size = 2;
  ok.queue_wait_us = 1500;
  ok.accelerator_us = 42'000;
  ok.worker_id = "w1";
  WireResult failed;
  failed.id = "b";
  failed.code = ErrorCode::kDeadlineExceeded;
  failed.message = "expired in queue";
  failed.reason = "queue_timeout";
  const std::string message = "[" + EncodeResult(ok) + "," + EncodeResult(failed) + "]";
  Result<std::vector<WireResult>> batch = DecodeResultBatch(message);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].id, "a");
  EXPECT_EQ((*batch)[0].code, ErrorCode::kOk);
  EXPECT_EQ((*batch)[0].output, "out");
  EXPECT_EQ((*batch)[0].tokens_used, 12u);
  EXPECT_EQ((*batch)[0].batch_id, 99u);
  EXPECT_EQ((*batch)[0].accelerator_us, 42'000);
  EXPECT_EQ((*batch)[1].code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ((*batch)[1].message, "expired in queue");
  EXPECT_EQ((*batch)[1].reason, "queue_timeout");
  // Codes are names: a number is unreadable, and that item alone is
  // answered as an internal error.
  size_t bad_items = 0;
  Result<std::vector<WireResult>> numeric = DecodeResultBatch(R"([{"id":"x","c":99}])", &bad_items);
  ASSERT_TRUE(numeric.ok());
  ASSERT_EQ(numeric->size(), 1u);
  EXPECT_EQ((*numeric)[0].code, ErrorCode::kInternal);
  EXPECT_EQ(bad_items, 1u);
  Result<std::vector<WireResult>> unknown = DecodeResultBatch(R"([{"id":"x","c":"new_code"}])");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ((*unknown)[0].code, ErrorCode::kInternal);
  EXPECT_FALSE(DecodeResultBatch(R"({"id":"x","c":0})").ok());
}

TEST(RequestCodecTest, EveryErrorCodeRoundTripsByName) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    WireResult r;
    r.id = "x";
    r.code = static_cast<ErrorCode>(i);
    Result<WireResult> back = DecodeResult(EncodeResult(r));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->code, r.code) << ErrorCodeName(r.code);
  }
}

TEST(RequestCodecTest, ConvertsInferenceRequestsAcrossClocks) {
  testing::FakeClock clock;
  InferenceRequest req;
  req.id = "req_1";
  req.principal.key_id = "k";
  req.principal.tier = 1;
  req.principal.tier_name = "paid";
  req.model = "m";
  req.input = "in";
  req.params.max_tokens = 5;
  req.arrival = clock.Now();
  req.dispatch_deadline = clock.Now() + Millis(2000);
  req.total_deadline = clock.Now() + Millis(4000);
  req.charged_tokens = 7;
  req.trace = *tracing::ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  WallClockAnchor gateway{clock.Now(), 1'000'000'000'000'000};
  WireRequest wire = ToWireRequest(req, "gw", gateway);
  EXPECT_EQ(wire.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(wire.arrival_us, 1'000'000'000'000'000);
  EXPECT_EQ(wire.dispatch_deadline_us, 1'000'000'002'000'000);
  EXPECT_EQ(wire.gateway_id, "gw");

  // The worker's steady clock has another origin; 30 ms of wall time later.
  WallClockAnchor worker{TimePoint{} + std::chrono::hours(7), 1'000'000'000'030'000};
  RequestPtr back = FromWireRequest(wire, worker);
  EXPECT_EQ(back->id, "req_1");
  EXPECT_EQ(back->principal.tier, 1);
  EXPECT_EQ(back->charged_tokens, 7);
  EXPECT_EQ(back->trace.span_id, req.trace.span_id);  // the worker's batch links to it
  EXPECT_TRUE(back->trace.sampled);
  EXPECT_EQ(ToMicros(back->dispatch_deadline - worker.steady), 1'970'000);
  EXPECT_EQ(ToMicros(worker.steady - back->arrival), 30'000);
}

TEST(RequestCodecTest, OutcomeRoundTripsThroughWireResult) {
  InferenceOutcome out;
  out.status = Status(ErrorCode::kBackendError, "boom");
  out.reason = "backend_failed";
  out.batch_size = 3;
  out.queue_wait = Micros(1234);
  WireResult wire = ToWireResult("req_9", out, "w7");
  EXPECT_EQ(wire.worker_id, "w7");
  Result<WireResult> decoded = DecodeResult(EncodeResult(wire));
  ASSERT_TRUE(decoded.ok());
  InferenceOutcome back = ToOutcome(*decoded);
  EXPECT_EQ(back.status.code(), ErrorCode::kBackendError);
  EXPECT_EQ(back.status.message(), "boom");
  ASSERT_NE(back.reason, nullptr);
  EXPECT_STREQ(back.reason, "backend_failed");
  EXPECT_EQ(back.batch_size, 3u);
  EXPECT_EQ(ToMicros(back.queue_wait), 1234);
}

// "ошибка 模型 💥": Cyrillic (2 bytes), CJK (3 bytes), an emoji (4 bytes).
const std::string kMultibyte =
    "\xD0\xBE\xD1\x88\xD0\xB8\xD0\xB1\xD0\xBA\xD0\xB0 \xE6\xA8\xA1\xE5\x9E\x8B "
    "\xF0\x9F\x92\xA5";
const std::string kFffd = "\xEF\xBF\xBD";

TEST(RequestCodecTest, AResultWithInvalidUtf8StillDeliversEveryItem) {
  std::vector<WireResult> in(3);
  in[0].id = "req_a";
  in[0].output = kMultibyte;
  in[1].id = "req_b";
  in[1].code = ErrorCode::kBackendError;
  // A backend's message cut in the middle of the emoji, plus a stray byte.
  in[1].message =
      "inference API failed this item: " + kMultibyte.substr(0, kMultibyte.size() - 2) + " \xFF!";
  in[1].detail = "item failed on http:http://10.0.0.1:8000#0";
  in[2].id = "req_c";
  in[2].output = "plain";
  const std::string message =
      "[" + EncodeResult(in[0]) + "," + EncodeResult(in[1]) + "," + EncodeResult(in[2]) + "]";
  size_t bad_items = 9;
  Result<std::vector<WireResult>> out = DecodeResultBatch(message, &bad_items);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(bad_items, 0u);
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[0].output, kMultibyte);  // multi-byte text intact
  EXPECT_EQ((*out)[1].code, ErrorCode::kBackendError);
  EXPECT_EQ((*out)[1].message,
            "inference API failed this item: " + kMultibyte.substr(0, kMultibyte.size() - 4) +
                kFffd + " " + kFffd + "!");
  EXPECT_EQ((*out)[1].detail, "item failed on http:http://10.0.0.1:8000#0");
  EXPECT_EQ((*out)[2].output, "plain");
}

TEST(RequestCodecTest, AMessageFromAnEncoderThatWroteRawBytesIsStillRead) {
  // As an older worker (or the Lua scripts, which join encoded results) might
  // publish it: raw invalid bytes inside one JSON string.
  const std::string message =
      "[{\"id\":\"req_a\",\"c\":\"ok\",\"out\":\"" + kMultibyte +
      "\"},{\"id\":\"req_b\",\"c\":\"backend_error\",\"msg\":\"bad \xC0\xAF "
      "\xED\xA0\x80 end\"},{\"id\":\"req_c\",\"c\":\"ok\",\"tok\":\"x\"},"
      "{\"c\":\"ok\"},{\"id\":\"req_d\",\"c\":\"ok\",\"out\":\"fine\"}]";
  size_t bad_items = 0;
  Result<std::vector<WireResult>> out = DecodeResultBatch(message, &bad_items);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 4u);  // the item without an id cannot be routed
  EXPECT_EQ(bad_items, 2u);
  EXPECT_EQ((*out)[0].id, "req_a");
  EXPECT_EQ((*out)[0].output, kMultibyte);
  EXPECT_EQ((*out)[1].id, "req_b");
  EXPECT_EQ((*out)[1].message, "bad " + kFffd + kFffd + " " + kFffd + kFffd + kFffd + " end");
  EXPECT_EQ((*out)[2].id, "req_c");  // a field of the wrong type: answered as an error
  EXPECT_EQ((*out)[2].code, ErrorCode::kInternal);
  EXPECT_EQ((*out)[3].id, "req_d");
  EXPECT_EQ((*out)[3].output, "fine");
  EXPECT_FALSE(DecodeResultBatch("[{\"id\":\"x\",\"c\":\"ok\"").ok());  // truncated JSON
}

TEST(RequestCodecTest, RequestsWithInvalidUtf8AreEncodedValid) {
  WireRequest in = Sample();
  in.input = "ab\xF0\x9F\x92";  // cut inside an emoji
  Result<WireRequest> out = DecodeEntry(EncodeEntry(in), in.id, in.model);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->input, "ab" + kFffd);
}

TEST(RequestCodecTest, TheInternalDetailTravelsToTheGatewayApartFromTheMessage) {
  InferenceOutcome out;
  out.status = BackendError("model 'm' failed after 3 attempts (the backend reported an error)");
  out.detail = "http:http://10.0.0.7:8000#0: inference API answered HTTP 500: " + kMultibyte;
  Result<WireResult> decoded = DecodeResult(EncodeResult(ToWireResult("req_1", out, "w1")));
  ASSERT_TRUE(decoded.ok());
  InferenceOutcome back = ToOutcome(*decoded);
  EXPECT_EQ(back.status.message(), out.status.message());
  EXPECT_EQ(back.detail, out.detail);
}

TEST(RequestCodecTest, TimesFromTheWireAreBoundedBeforeTheyBecomeDurations) {
  // Found by fuzz/redis_codec_fuzzer: 12004444444444444 µs overflowed the
  // conversion to nanoseconds.
  Result<std::vector<WireResult>> batch = DecodeResultBatch(
      R"([{"id":"req_1","c":"ok","tok":0,"bs":6,"qw":12004444444444444,"acc":-5}])");
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 1u);
  InferenceOutcome back = ToOutcome(batch->front());
  EXPECT_EQ(back.queue_wait, std::chrono::hours(24));
  EXPECT_EQ(back.accelerator_time, Micros(0));
}

}  // namespace
}  // namespace sluice::redis
