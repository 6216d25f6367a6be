#include "daemon/server/jute.h"

#include <utility>

namespace qfs::zk {

bool JuteReader::Take(size_t n, const char** p) {
  if (!ok_ || n > remaining()) return Fail();
  *p = in_.data() + pos_;
  pos_ += n;
  return true;
}

bool JuteReader::ReadInt(int32_t* v) {
  const char* p;
  if (!Take(4, &p)) return false;
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
  *v = static_cast<int32_t>(u);
  return true;
}

bool JuteReader::ReadLong(int64_t* v) {
  const char* p;
  if (!Take(8, &p)) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
  *v = static_cast<int64_t>(u);
  return true;
}

bool JuteReader::ReadBool(bool* v) {
  const char* p;
  if (!Take(1, &p)) return false;
  *v = *p != 0;
  return true;
}

bool JuteReader::ReadBuffer(std::string* v, bool* is_null) {
  int32_t len;
  if (!ReadInt(&len)) return false;
  if (len == -1) {
    v->clear();
    if (is_null != nullptr) *is_null = true;
    return true;
  }
  // Java's checkLength: negative or over jute.maxbuffer is an unreasonable length.
  if (len < 0 || static_cast<size_t>(len) > max_buffer_) return Fail();
  const char* p;
  if (!Take(static_cast<size_t>(len), &p)) return false;
  v->assign(p, static_cast<size_t>(len));
  if (is_null != nullptr) *is_null = false;
  return true;
}

bool JuteReader::ReadCount(size_t min_item_bytes, size_t* n) {
  int32_t count;
  if (!ReadInt(&count)) return false;
  if (count == -1) {
    *n = 0;
    return true;
  }
  if (count < 0) return Fail();
  const size_t c = static_cast<size_t>(count);
  if (min_item_bytes == 0 || c > remaining() / min_item_bytes) return Fail();
  *n = c;
  return true;
}

bool JuteReader::ReadStringVector(std::vector<std::string>* v) {
  size_t n;
  if (!ReadCount(4, &n)) return false;
  v->clear();
  v->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!ReadString(&v->emplace_back())) return false;
  }
  return true;
}

bool JuteReader::ReadStat(tree::Stat* s) {
  return ReadLong(&s->czxid) && ReadLong(&s->mzxid) && ReadLong(&s->ctime) && ReadLong(&s->mtime) &&
         ReadInt(&s->version) && ReadInt(&s->cversion) && ReadInt(&s->aversion) &&
         ReadLong(&s->ephemeral_owner) && ReadInt(&s->data_length) && ReadInt(&s->num_children) &&
         ReadLong(&s->pzxid);
}

bool JuteReader::ReadId(tree::Id* id) {
  return ReadString(&id->scheme) && ReadString(&id->id);
}

bool JuteReader::ReadAcl(tree::Acl* acl) {
  return ReadInt(&acl->perms) && ReadId(&acl->id);
}

bool JuteReader::ReadAclVector(std::vector<tree::Acl>* v) {
  size_t n;
  if (!ReadCount(12, &n)) return false;  // perms + two string lengths
  v->clear();
  v->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!ReadAcl(&v->emplace_back())) return false;
  }
  return true;
}

JuteWriter::JuteWriter(Framing framing) : framed_(framing == Framing::kLengthPrefixed) {
  if (framed_) out_.assign(4, '\0');
}

void JuteWriter::WriteInt(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
  out_.append(b, 4);
}

void JuteWriter::WriteLong(int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  WriteInt(static_cast<int32_t>(static_cast<uint32_t>(u >> 32)));
  WriteInt(static_cast<int32_t>(static_cast<uint32_t>(u)));
}

void JuteWriter::WriteBool(bool v) {
  out_.push_back(v ? 1 : 0);
}

void JuteWriter::WriteBuffer(std::string_view v) {
  WriteInt(static_cast<int32_t>(v.size()));
  out_.append(v);
}

void JuteWriter::WriteStringVector(const std::vector<std::string>& v) {
  WriteInt(static_cast<int32_t>(v.size()));
  for (const std::string& s : v) WriteString(s);
}

void JuteWriter::WriteStat(const tree::Stat& s) {
  WriteLong(s.czxid);
  WriteLong(s.mzxid);
  WriteLong(s.ctime);
  WriteLong(s.mtime);
  WriteInt(s.version);
  WriteInt(s.cversion);
  WriteInt(s.aversion);
  // Clients see 0 for containers and TTL nodes, as ZooKeeper's getClientEphemeralOwner does.
  WriteLong(tree::IsSessionOwner(s.ephemeral_owner) ? s.ephemeral_owner : 0);
  WriteInt(s.data_length);
  WriteInt(s.num_children);
  WriteLong(s.pzxid);
}

void JuteWriter::WriteId(const tree::Id& id) {
  WriteString(id.scheme);
  WriteString(id.id);
}

void JuteWriter::WriteAcl(const tree::Acl& acl) {
  WriteInt(acl.perms);
  WriteId(acl.id);
}

void JuteWriter::WriteAclVector(const std::vector<tree::Acl>& v) {
  WriteInt(static_cast<int32_t>(v.size()));
  for (const tree::Acl& a : v) WriteAcl(a);
}

std::string JuteWriter::Finish() && {
  if (framed_) {
    const auto len = static_cast<uint32_t>(out_.size() - 4);
    out_[0] = static_cast<char>(len >> 24);
    out_[1] = static_cast<char>(len >> 16);
    out_[2] = static_cast<char>(len >> 8);
    out_[3] = static_cast<char>(len);
  }
  return std::move(out_);
}

}  // namespace qfs::zk
