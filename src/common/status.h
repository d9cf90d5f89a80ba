// Status and Result<T>: how Sluice reports what can fail at run time.
//
// Every fallible call returns a Status (or Result<T>) instead of throwing.
// ErrorCode is the closed set of failure kinds; HttpStatusFor() is the single
// table that maps them to HTTP statuses (see error_mapping.cc). Retryable
// kinds (kUnavailable, kDeadlineExceeded) are kept apart from permanent ones.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sluice {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // malformed input: 400
  kUnauthenticated,   // missing or unknown credentials: 401
  kPermissionDenied,  // credentials valid but not allowed: 403
  kNotFound,          // unknown model / id / route: 404
  kMethodNotAllowed,  // wrong HTTP method: 405
  kPayloadTooLarge,   // body over the limit: 413
  kRateLimited,       // a per-key limit was hit: 429
  kUnavailable,       // queue full, shedding, shutting down (retryable): 503
  kUnprocessable,     // well-formed but in conflict with an earlier request: 422
  kDeadlineExceeded,  // the request's deadline passed: 504
  kBackendError,      // the accelerator failed the batch or item: 502
  kCancelled,         // the client went away before the answer: 499 (never sent)
  kInternal,          // a bug: 500
};

// Short machine-readable name used in JSON error bodies ("queue_full" style
// codes are chosen by the caller; this is the fallback per kind).
const char* ErrorCodeName(ErrorCode code);

// HTTP status for an error kind; the one table the front door uses.
int HttpStatusFor(ErrorCode code);

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) {
  return {ErrorCode::kDeadlineExceeded, std::move(m)};
}
inline Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
inline Status BackendError(std::string m) { return {ErrorCode::kBackendError, std::move(m)}; }

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice
