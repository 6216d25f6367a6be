#include "daemon/tree/node_store.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "consensus/util/checksum.h"
#include "consensus/util/result.h"

namespace qfs::tree::internal {
namespace {

constexpr uint32_t kDenseMax = 8;  // up to this capacity the set is a plain array
constexpr uint64_t kPtrMask = (uint64_t{1} << 48) - 1;
constexpr size_t kMaxStatBytes = 10 * 10;  // up to ten varints

void* Alloc(size_t n) {
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}

// --- Stat encoding: zigzag varints; mzxid and pzxid relative to czxid, mtime to ctime, so a
// typical node needs about 20 bytes instead of 60. Differences wrap (no signed overflow).
// A tenth varint, cversion minus the child create counter (the child deletes), is left out when
// zero, so leaves and nodes that never lost a child pay nothing for it.

uint64_t ZigZag(uint64_t v) {
  return (v << 1) ^ (0 - (v >> 63));
}
uint64_t UnZigZag(uint64_t z) {
  return (z >> 1) ^ (0 - (z & 1));
}

uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

const uint8_t* GetVarint(const uint8_t* p, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0;; shift += 7) {
    uint8_t b = *p++;
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  *v = r;
  return p;
}

// a - b, wrapping like the Java ints these counters are.
int32_t WrapSub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}

size_t EncodeStat(const Stat& s, int32_t child_creates, uint8_t* out) {
  auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  uint8_t* p = out;
  p = PutVarint(p, ZigZag(u(s.czxid)));
  p = PutVarint(p, ZigZag(u(s.mzxid) - u(s.czxid)));
  p = PutVarint(p, ZigZag(u(s.pzxid) - u(s.czxid)));
  p = PutVarint(p, ZigZag(u(s.ctime)));
  p = PutVarint(p, ZigZag(u(s.mtime) - u(s.ctime)));
  p = PutVarint(p, ZigZag(u(s.version)));
  p = PutVarint(p, ZigZag(u(s.cversion)));
  p = PutVarint(p, ZigZag(u(s.aversion)));
  p = PutVarint(p, ZigZag(u(s.ephemeral_owner)));
  if (int32_t deletes = WrapSub(s.cversion, child_creates); deletes != 0) {
    p = PutVarint(p, ZigZag(u(deletes)));
  }
  return static_cast<size_t>(p - out);
}

// Builds a block for `n`'s header with the given encoded stat, name and data.
Node* BuildNode(const Node& header, const uint8_t* stat, size_t stat_len, std::string_view name,
                std::string_view data) {
  QFS_CHECK(name.size() <= UINT32_MAX && data.size() <= UINT32_MAX);
  auto* n = static_cast<Node*>(Alloc(kNodeHeaderBytes + stat_len + name.size() + data.size()));
  std::memcpy(static_cast<void*>(n), &header, kNodeHeaderBytes);
  n->stat_len = static_cast<uint8_t>(stat_len);
  n->name_len = static_cast<uint32_t>(name.size());
  n->data_len = static_cast<uint32_t>(data.size());
  char* p = reinterpret_cast<char*>(n) + kNodeHeaderBytes;
  std::memcpy(p, stat, stat_len);
  if (!name.empty()) std::memcpy(p + stat_len, name.data(), name.size());
  if (!data.empty()) std::memcpy(p + stat_len + name.size(), data.data(), data.size());
  return n;
}

uint64_t MakeSlot(Node* n, uint64_t name_hash) {
  auto p = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(n));
  QFS_CHECK((p & ~kPtrMask) == 0);  // user-space pointers fit in 48 bits
  return (name_hash & ~kPtrMask) | p;
}

uint16_t SlotTag(uint64_t slot) {
  return static_cast<uint16_t>(slot >> 48);
}
uint16_t HashTag(uint64_t name_hash) {
  return static_cast<uint16_t>(name_hash >> 48);
}
// Where a slot's probe run starts; names are short, so rehashing beats storing the hash.
uint32_t Home(uint64_t slot, uint32_t mask) {
  return static_cast<uint32_t>(NameHash(SlotNode(slot)->name())) & mask;
}

bool NameIs(const Node* n, std::string_view name) {
  return n->name_len == name.size() && n->name() == name;
}

ChildSet* NewSet(uint32_t cap) {
  auto* cs = static_cast<ChildSet*>(Alloc(sizeof(ChildSet) + sizeof(uint64_t) * cap));
  cs->cap = cap;
  cs->size = 0;
  std::memset(cs->slots, 0, sizeof(uint64_t) * cap);
  return cs;
}

// Inserts a slot known to be absent into a set with room for it.
void RawInsert(ChildSet* cs, uint64_t slot) {
  if (cs->cap <= kDenseMax) {
    cs->slots[cs->size++] = slot;
    return;
  }
  uint32_t mask = cs->cap - 1;
  uint32_t i = Home(slot, mask);
  while (cs->slots[i]) i = (i + 1) & mask;
  cs->slots[i] = slot;
  cs->size++;
}

ChildSet* Rebuild(ChildSet* old, uint32_t cap) {
  ChildSet* cs = NewSet(cap);
  for (uint32_t i = 0; i < old->cap; i++) {
    if (old->slots[i]) RawInsert(cs, old->slots[i]);
  }
  std::free(old);
  return cs;
}

// Index of the child's slot, or cap if absent.
uint32_t FindSlot(const ChildSet* cs, std::string_view name, uint64_t name_hash) {
  uint16_t tag = HashTag(name_hash);
  if (cs->cap <= kDenseMax) {
    for (uint32_t i = 0; i < cs->size; i++) {
      uint64_t s = cs->slots[i];
      if (SlotTag(s) == tag && NameIs(SlotNode(s), name)) return i;
    }
    return cs->cap;
  }
  uint32_t mask = cs->cap - 1;
  for (uint32_t i = static_cast<uint32_t>(name_hash) & mask;; i = (i + 1) & mask) {
    uint64_t s = cs->slots[i];
    if (!s) return cs->cap;
    if (SlotTag(s) == tag && NameIs(SlotNode(s), name)) return i;
  }
}

}  // namespace

uint64_t NameHash(std::string_view name) {
  return Hash64(name, 0x6e616d65ULL);
}

Stat GetStat(const Node* n, int32_t* child_creates) {
  uint64_t v[9];
  const uint8_t* p = n->stat_bytes();
  for (uint64_t& x : v) p = GetVarint(p, &x);
  uint64_t deletes = 0;
  if (p != n->stat_bytes() + n->stat_len) GetVarint(p, &deletes);
  Stat s;
  uint64_t czxid = UnZigZag(v[0]), ctime = UnZigZag(v[3]);
  s.czxid = static_cast<int64_t>(czxid);
  s.mzxid = static_cast<int64_t>(czxid + UnZigZag(v[1]));
  s.pzxid = static_cast<int64_t>(czxid + UnZigZag(v[2]));
  s.ctime = static_cast<int64_t>(ctime);
  s.mtime = static_cast<int64_t>(ctime + UnZigZag(v[4]));
  s.version = static_cast<int32_t>(UnZigZag(v[5]));
  s.cversion = static_cast<int32_t>(UnZigZag(v[6]));
  s.aversion = static_cast<int32_t>(UnZigZag(v[7]));
  s.ephemeral_owner = static_cast<int64_t>(UnZigZag(v[8]));
  s.data_length = static_cast<int32_t>(n->data_len);
  s.num_children = n->num_children();
  if (child_creates) {
    *child_creates = WrapSub(s.cversion, static_cast<int32_t>(UnZigZag(deletes)));
  }
  return s;
}

Node* NewNode(std::string_view name, std::string_view data, const Stat& stat, int32_t child_creates,
              uint32_t acl_id, Kind kind) {
  Node header{};
  header.acl_id = acl_id;
  header.kind = static_cast<uint8_t>(kind);
  uint8_t buf[kMaxStatBytes];
  size_t len = EncodeStat(stat, child_creates, buf);
  return BuildNode(header, buf, len, name, data);
}

Node* UpdateNode(Node* parent, Node* n, const Stat& stat, int32_t child_creates,
                 const std::string_view* data) {
  uint8_t buf[kMaxStatBytes];
  size_t len = EncodeStat(stat, child_creates, buf);
  std::string_view new_data = data ? *data : n->data();
  if (len == n->stat_len && new_data.size() == n->data_len) {
    uint8_t* p = reinterpret_cast<uint8_t*>(n) + kNodeHeaderBytes;
    std::memcpy(p, buf, len);
    if (data && !data->empty()) std::memcpy(p + len + n->name_len, data->data(), data->size());
    return n;
  }
  // The size changes: build a new block, re-point the parent's slot, free the old one.
  Node* m = BuildNode(*n, buf, len, n->name(), new_data);
  if (parent) {
    ChildSet* cs = parent->children;
    QFS_CHECK(cs != nullptr);
    uint32_t i = FindSlot(cs, n->name(), NameHash(n->name()));
    QFS_CHECK(i != cs->cap);
    cs->slots[i] = (cs->slots[i] & ~kPtrMask) | MakeSlot(m, 0);
  }
  std::free(n);
  return m;
}

void FreeNode(Node* n) {
  QFS_CHECK(n->children == nullptr);
  std::free(n);
}

size_t NodeAllocBytes(const Node* n) {
  return kNodeHeaderBytes + n->stat_len + n->name_len + n->data_len;
}

size_t ChildSetAllocBytes(const Node* n) {
  return n->children ? sizeof(ChildSet) + sizeof(uint64_t) * n->children->cap : 0;
}

Node* FindChild(const Node* parent, std::string_view name, uint64_t name_hash) {
  const ChildSet* cs = parent->children;
  if (!cs) return nullptr;
  uint32_t i = FindSlot(cs, name, name_hash);
  return i == cs->cap ? nullptr : SlotNode(cs->slots[i]);
}

void AddChild(Node* parent, Node* child, uint64_t name_hash) {
  ChildSet*& cs = parent->children;
  if (!cs) {
    cs = NewSet(2);
  } else if (cs->cap <= kDenseMax ? cs->size == cs->cap
                                  : (uint64_t{cs->size} + 1) * 4 > uint64_t{cs->cap} * 3) {
    cs = Rebuild(cs, cs->cap * 2);  // past 8 entries this switches to the hashed layout
  }
  RawInsert(cs, MakeSlot(child, name_hash));
}

Node* RemoveChild(Node* parent, std::string_view name, uint64_t name_hash) {
  ChildSet*& cs = parent->children;
  if (!cs) return nullptr;
  uint32_t i = FindSlot(cs, name, name_hash);
  if (i == cs->cap) return nullptr;
  Node* child = SlotNode(cs->slots[i]);
  if (cs->cap <= kDenseMax) {
    cs->slots[i] = cs->slots[cs->size - 1];
    cs->slots[cs->size - 1] = 0;
  } else {
    // Backward-shift deletion: pull later entries of the probe run into the hole.
    uint32_t mask = cs->cap - 1;
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; cs->slots[j]; j = (j + 1) & mask) {
      uint32_t home = Home(cs->slots[j], mask);
      // The entry may move to `hole` unless its home lies cyclically in (hole, j].
      bool home_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!home_between) {
        cs->slots[hole] = cs->slots[j];
        hole = j;
      }
    }
    cs->slots[hole] = 0;
  }
  cs->size--;
  if (cs->size == 0) {
    std::free(cs);
    cs = nullptr;
  } else if (cs->cap > 2 && uint64_t{cs->size} * 4 < cs->cap) {
    cs = Rebuild(cs, cs->cap / 2);
  }
  return child;
}

}  // namespace qfs::tree::internal
