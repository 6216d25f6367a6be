// Immutable bytes shared by reference count. A txn's payload is encoded once; the core's
// in-memory window, a Ready's append and apply lists and the log writer's queue then hold the
// same buffer instead of a copy each (docs/ensemble.md, "Copies of a txn"). Thread-safe to
// share: the bytes never change after construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace qfs {

class SharedBytes {
 public:
  SharedBytes() = default;
  // Implicit: a std::string hands its buffer over (moved, not copied).
  SharedBytes(std::string s)  // NOLINT(google-explicit-constructor)
      : p_(s.empty() ? nullptr : std::make_shared<const std::string>(std::move(s))) {}
  SharedBytes(const char* s) : SharedBytes(std::string(s)) {}  // NOLINT

  const std::string& str() const { return p_ ? *p_ : Empty(); }
  // Implicit, so readers that take a const std::string& (ParseFromString) need no change.
  operator const std::string&() const { return str(); }  // NOLINT
  std::string_view view() const { return str(); }
  const char* data() const { return str().data(); }
  size_t size() const { return p_ ? p_->size() : 0; }
  bool empty() const { return size() == 0; }

  friend bool operator==(const SharedBytes& a, const SharedBytes& b) {
    return a.p_ == b.p_ || a.view() == b.view();
  }
  friend bool operator==(const SharedBytes& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const SharedBytes& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const SharedBytes& a, const char* b) { return a.view() == b; }

 private:
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  std::shared_ptr<const std::string> p_;
};

}  // namespace qfs
