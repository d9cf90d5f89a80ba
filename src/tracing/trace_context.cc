#include "tracing/trace_context.h"

#include <chrono>
#include <cstring>
#include <random>

namespace sluice::tracing {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid too
}

// Reads 2 * N lower-case hex digits into `out`.
template <size_t N>
bool ReadHex(std::string_view text, std::array<uint8_t, N>* out) {
  if (text.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(text[2 * i]), lo = HexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a) {
    if (b != 0) return false;
  }
  return true;
}

template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& a) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kDigits[a[i] >> 4];
    out[2 * i + 1] = kDigits[a[i] & 0xf];
  }
  return out;
}

std::mt19937_64& Generator() {
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return generator;
}

template <size_t N>
std::array<uint8_t, N> RandomId() {
  std::array<uint8_t, N> id{};
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = Generator()();
      std::memcpy(id.data() + i, &r, std::min<size_t>(8, N - i));
    }
  } while (AllZero(id));
  return id;
}

}  // namespace

bool SpanContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::optional<SpanContext> ParseTraceparent(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr size_t kLength = 55;
  if (header.size() < kLength || header[2] != '-' || header[35] != '-' || header[52] != '-') {
    return std::nullopt;
  }
  std::array<uint8_t, 1> version{}, flags{};
  if (!ReadHex(header.substr(0, 2), &version) || version[0] == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later one may go on after a '-'.
  if (header.size() > kLength && (version[0] == 0 || header[kLength] != '-')) return std::nullopt;
  SpanContext c;
  if (!ReadHex(header.substr(3, 32), &c.trace_id) || !ReadHex(header.substr(36, 16), &c.span_id) ||
      !ReadHex(header.substr(53, 2), &flags) || !c.valid()) {
    return std::nullopt;
  }
  c.sampled = (flags[0] & 0x01) != 0;
  return c;
}

std::string FormatTraceparent(const SpanContext& c) {
  return "00-" + ToHex(c.trace_id) + "-" + ToHex(c.span_id) + (c.sampled ? "-01" : "-00");
}

std::string SanitizeTracestate(std::string_view header) {
  if (header.size() > 512) return "";
  for (char ch : header) {
    if (ch < 0x20 || ch > 0x7e) return "";
  }
  return std::string(header);
}

TraceId NewTraceId() { return RandomId<16>(); }
SpanId NewSpanId() { return RandomId<8>(); }

std::string Hex(const TraceId& id) { return ToHex(id); }
std::string Hex(const SpanId& id) { return ToHex(id); }

int64_t NowUnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::tracing
