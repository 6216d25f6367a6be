// ZooKeeper's jute binary encoding (BinaryInputArchive / BinaryOutputArchive): big-endian int32
// and int64, bool as one byte, buffer and ustring as an int32 length (-1 = null) and the bytes,
// vector as an int32 count (-1 = null) and the items. Records are their fields in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/tree/types.h"

namespace qfs::zk {

// jute.maxbuffer: the largest packet (and so the largest field) a server accepts.
inline constexpr size_t kDefaultMaxBuffer = 1 << 20;

// Wire sizes of fixed-size records, used to reject vector counts the input cannot hold.
inline constexpr size_t kStatBytes = 68;

// Reads jute values from a byte string. Every read is bounds-checked; a failed read (underflow,
// a negative length other than -1, a length over max_buffer) returns false and so does every
// later read, so a chain of reads can be checked once at the end.
class JuteReader {
 public:
  explicit JuteReader(std::string_view in, size_t max_buffer = kDefaultMaxBuffer)
      : in_(in), max_buffer_(max_buffer) {}
  // The reader keeps a view: a temporary string would dangle.
  JuteReader(std::string&&, size_t = kDefaultMaxBuffer) = delete;

  bool ReadInt(int32_t* v);
  bool ReadLong(int64_t* v);
  // Any non-zero byte is true, as Java's DataInput.readBoolean.
  bool ReadBool(bool* v);
  // A null (-1) buffer reads as empty; *is_null tells them apart when asked.
  bool ReadBuffer(std::string* v, bool* is_null = nullptr);
  bool ReadString(std::string* v, bool* is_null = nullptr) { return ReadBuffer(v, is_null); }
  // A vector's count: null (-1) reads as 0. Each item takes at least min_item_bytes, so a count
  // the rest of the input cannot hold fails here, before anything is allocated for it.
  bool ReadCount(size_t min_item_bytes, size_t* n);
  bool ReadStringVector(std::vector<std::string>* v);

  bool ReadStat(tree::Stat* s);
  bool ReadId(tree::Id* id);
  bool ReadAcl(tree::Acl* acl);
  bool ReadAclVector(std::vector<tree::Acl>* v);

  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size() - pos_; }
  // True if every read succeeded and the input is used up.
  bool AtEnd() const { return ok_ && pos_ == in_.size(); }

 private:
  bool Take(size_t n, const char** p);
  bool Fail() {
    ok_ = false;
    return false;
  }

  std::string_view in_;
  size_t pos_ = 0;
  size_t max_buffer_;
  bool ok_ = true;
};

// Appends jute values to a string. With Framing::kLengthPrefixed the output starts with the
// int32 length of what follows, as every packet on a ZooKeeper connection does; Finish() fills
// it in.
class JuteWriter {
 public:
  enum class Framing { kNone, kLengthPrefixed };
  explicit JuteWriter(Framing framing = Framing::kNone);

  void WriteInt(int32_t v);
  void WriteLong(int64_t v);
  void WriteBool(bool v);
  void WriteBuffer(std::string_view v);
  void WriteNullBuffer() { WriteInt(-1); }
  void WriteString(std::string_view v) { WriteBuffer(v); }
  void WriteStringVector(const std::vector<std::string>& v);

  void WriteStat(const tree::Stat& s);
  void WriteId(const tree::Id& id);
  void WriteAcl(const tree::Acl& acl);
  void WriteAclVector(const std::vector<tree::Acl>& v);

  size_t size() const { return out_.size(); }
  // The bytes written so far (including the length prefix when framed).
  const std::string& data() const { return out_; }
  std::string Finish() &&;

 private:
  std::string out_;
  bool framed_;
};

}  // namespace qfs::zk
