#include "daemon/tree/node_acl.h"

#include "consensus/util/checksum.h"
#include "consensus/util/result.h"

namespace qfs::tree::internal {
namespace {

int32_t PermsOf(const Acl& a) {
  return a.perms;
}
int32_t PermsOf(const txn::Acl& a) {
  return a.perms();
}
const std::string& SchemeOf(const Acl& a) {
  return a.id.scheme;
}
const std::string& SchemeOf(const txn::Acl& a) {
  return a.scheme();
}
const std::string& IdOf(const Acl& a) {
  return a.id.id;
}
const std::string& IdOf(const txn::Acl& a) {
  return a.id();
}

template <typename L>
uint64_t HashList(const L& acl) {
  uint64_t h = 0x61636c73ULL;
  for (const auto& a : acl) {
    h = HashMix(h, static_cast<uint32_t>(PermsOf(a)));
    h = HashMix(h, Hash64(SchemeOf(a), 1));
    h = HashMix(h, Hash64(IdOf(a), 2));
  }
  return HashMix(h, static_cast<uint64_t>(acl.size()));
}

template <typename L>
bool SameList(const std::vector<Acl>& a, const L& b) {
  if (a.size() != static_cast<size_t>(b.size())) return false;
  size_t i = 0;
  for (const auto& x : b) {
    const Acl& y = a[i++];
    if (y.perms != PermsOf(x) || y.id.scheme != SchemeOf(x) || y.id.id != IdOf(x)) return false;
  }
  return true;
}

std::vector<Acl> ToVector(const std::vector<Acl>& acl) {
  return acl;
}
std::vector<Acl> ToVector(const ProtoAcls& acl) {
  return AclFromProto(acl);
}

}  // namespace

uint64_t AclHash(const std::vector<Acl>& acl) {
  return HashList(acl);
}
uint64_t AclHash(const ProtoAcls& acl) {
  return HashList(acl);
}

std::vector<Acl> AclFromProto(const ProtoAcls& acl) {
  std::vector<Acl> out;
  out.reserve(acl.size());
  for (const auto& a : acl) out.push_back(Acl{a.perms(), Id{a.scheme(), a.id()}});
  return out;
}

uint32_t AclTable::TakeId() {
  if (!free_.empty()) {
    uint32_t id = *free_.begin();
    free_.erase(free_.begin());
    return id;
  }
  QFS_CHECK(entries_.size() < UINT32_MAX);
  entries_.emplace_back();
  return static_cast<uint32_t>(entries_.size() - 1);
}

template <typename L>
uint32_t AclTable::RefImpl(const L& acl, uint64_t h) {
  auto [lo, hi] = by_hash_.equal_range(h);
  for (auto it = lo; it != hi; ++it) {
    Entry& e = entries_[it->second];
    if (SameList(e.acl, acl)) {
      e.refs++;
      return it->second;
    }
  }
  uint32_t id = TakeId();
  Entry& e = entries_[id];
  e.acl = ToVector(acl);
  e.hash = h;
  e.refs = 1;
  by_hash_.emplace(h, id);
  return id;
}

uint32_t AclTable::Ref(const ProtoAcls& acl) {
  return RefImpl(acl, AclHash(acl));
}
uint32_t AclTable::Ref(const std::vector<Acl>& acl) {
  return RefImpl(acl, AclHash(acl));
}

bool AclTable::RefInstalled(uint32_t id) {
  if (id >= entries_.size() || entries_[id].acl.empty()) return false;
  entries_[id].refs++;
  return true;
}

void AclTable::Unref(uint32_t id) {
  QFS_CHECK(Has(id));
  Entry& e = entries_[id];
  if (--e.refs > 0) return;
  auto [lo, hi] = by_hash_.equal_range(e.hash);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == id) {
      by_hash_.erase(it);
      break;
    }
  }
  e = Entry();
  free_.insert(id);
}

bool AclTable::Install(uint32_t id, std::vector<Acl> acl) {
  uint64_t h = AclHash(acl);
  auto [lo, hi] = by_hash_.equal_range(h);
  for (auto it = lo; it != hi; ++it) {
    if (SameList(entries_[it->second].acl, acl)) return false;
  }
  if (id < entries_.size()) {
    if (!free_.count(id) && !entries_[id].acl.empty()) return false;
  } else {
    for (size_t i = entries_.size(); i < id; i++) free_.insert(static_cast<uint32_t>(i));
    entries_.resize(size_t{id} + 1);
  }
  free_.erase(id);
  Entry& e = entries_[id];
  e.acl = std::move(acl);
  e.hash = h;
  e.refs = 0;
  by_hash_.emplace(h, id);
  return true;
}

bool AclTable::AllReferenced() const {
  for (const auto& [h, id] : by_hash_) {
    if (entries_[id].refs == 0) return false;
  }
  return true;
}

size_t AclTable::ApproxBytes() const {
  size_t n = entries_.capacity() * sizeof(Entry) + free_.size() * 40 + by_hash_.size() * 32;
  for (const Entry& e : entries_) {
    n += e.acl.capacity() * sizeof(Acl);
    for (const Acl& a : e.acl) n += a.id.scheme.capacity() + a.id.id.capacity();
  }
  return n;
}

}  // namespace qfs::tree::internal
