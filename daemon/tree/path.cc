// ZooKeeper's znode path rules (PathUtils.validatePath) over UTF-8 paths.
#include <string>
#include <string_view>
#include <vector>

#include "daemon/tree/prepare.h"

namespace qfs::tree {
namespace {

// Strict UTF-8 decoding. ZooKeeper decodes request strings with Java's UTF-8 decoder, which turns
// malformed input into U+FFFD; that character is in a rejected range, so malformed input is
// simply invalid here.
bool DecodeUtf8(std::string_view s, std::vector<char32_t>* out) {
  out->clear();
  out->reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out->push_back(b0);
      ++i;
      continue;
    }
    int len;
    char32_t cp;
    char32_t min;
    if ((b0 & 0xe0) == 0xc0) {
      len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    // Overlong forms, encoded surrogates and values past U+10FFFF are malformed.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    out->push_back(cp);
    i += len;
  }
  return true;
}

bool ForbiddenChar(char32_t c) {
  // Java checks UTF-16 units: characters beyond the BMP become surrogates (0xd800..0xdfff),
  // which fall in the rejected 0xd800..0xf8ff range.
  return (c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
         (c >= 0xfff0 && c <= 0xffff) || c > 0xffff;
}

bool ValidPath(std::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() == 1) return true;
  if (path.back() == '/') return false;
  std::vector<char32_t> c;
  if (!DecodeUtf8(path, &c)) return false;
  const size_t n = c.size();
  for (size_t i = 1; i < n; ++i) {
    const char32_t cur = c[i];
    const char32_t last = c[i - 1];
    const bool ends_component = i + 1 == n || c[i + 1] == '/';
    if (cur == 0) return false;
    if (cur == '/' && last == '/') return false;  // empty component
    if (cur == '.' && last == '.') {
      if (i >= 2 && c[i - 2] == '/' && ends_component) return false;  // ".."
    } else if (cur == '.') {
      if (last == '/' && ends_component) return false;  // "."
    } else if (ForbiddenChar(cur)) {
      return false;
    }
  }
  return true;
}

}  // namespace

Err ValidatePath(std::string_view path, bool sequential) {
  if (!sequential) return ValidPath(path) ? Err::kOk : Err::kBadArguments;
  // As ZooKeeper: a sequential path is checked with a digit standing in for the suffix.
  std::string p(path);
  p.push_back('1');
  return ValidPath(p) ? Err::kOk : Err::kBadArguments;
}

// The parent of "/" (and of a string without '/') is "", as in ZooKeeper, where "" aliases the
// root; callers never walk above the root.
std::string_view ParentPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || path.size() == 1) return {};
  if (slash == 0) return path.substr(0, 1);
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return path;
  return path.substr(slash + 1);
}

}  // namespace qfs::tree
