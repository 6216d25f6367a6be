// Errors at module boundaries are values: Status for "ok or why not", Result<T> for "a T or why
// not".
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace qfs {

enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kCorruption,   // stored data failed a checksum or is malformed before the tail
  kIoError,      // an I/O call failed (errno in the message)
  kNoSpace,      // ENOSPC: the disk is full; nothing was written
  kUnavailable,  // temporarily cannot serve (e.g. log closed, disk full)
  kInternal,
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

inline Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status Corruption(std::string m) {
  return {Code::kCorruption, std::move(m)};
}
inline Status IoError(std::string m) {
  return {Code::kIoError, std::move(m)};
}
inline Status NoSpace(std::string m) {
  return {Code::kNoSpace, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// Builds a kIoError (or kNoSpace for ENOSPC) from an errno value.
Status ErrnoStatus(const std::string& what, int err);

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status st) : v_(std::move(st)) {    // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace qfs

#define QFS_RETURN_IF_ERROR(expr) \
  do {                            \
    ::qfs::Status _st = (expr);   \
    if (!_st.ok()) return _st;    \
  } while (0)

// Invariants stay on in release builds.
#define QFS_CHECK(cond)                                         \
  do {                                                          \
    if (!(cond)) ::qfs::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

namespace qfs {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}
