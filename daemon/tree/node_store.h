// Compact znode storage. A node is one heap block: a small header, its Stat fields as varints,
// its name, then its data. Nodes have no parent pointer and no full path (paths are walked from
// the root), so a block can be replaced when its size changes and only the parent's child-set
// slot has to follow. The child set exists only for nodes with children.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/tree/types.h"

namespace qfs::tree::internal {

struct ChildSet;

struct Node {
  ChildSet* children;  // nullptr when there are none
  uint32_t acl_id;
  uint32_t name_len;
  uint32_t data_len;
  uint8_t stat_len;  // bytes of encoded Stat fields
  uint8_t kind;
  // stat_len + name_len + data_len bytes follow at kNodeHeaderBytes (from the tail padding on).

  const uint8_t* stat_bytes() const;
  std::string_view name() const;
  std::string_view data() const;
  int32_t num_children() const;
};

inline constexpr size_t kNodeHeaderBytes = offsetof(Node, kind) + 1;
inline const uint8_t* Node::stat_bytes() const {
  return reinterpret_cast<const uint8_t*>(this) + kNodeHeaderBytes;
}
inline std::string_view Node::name() const {
  return {reinterpret_cast<const char*>(stat_bytes()) + stat_len, name_len};
}
inline std::string_view Node::data() const {
  return {reinterpret_cast<const char*>(stat_bytes()) + stat_len + name_len, data_len};
}

uint64_t NameHash(std::string_view name);

// The node's Stat, data_length and num_children included. `child_creates`, if given, gets the
// node's child create counter (ZooKeeper's parentCVersion, which numbers sequential children);
// cversion counts child deletes too.
Stat GetStat(const Node* n, int32_t* child_creates = nullptr);
// A new node with the stored fields of `stat` (data_length and num_children are derived).
Node* NewNode(std::string_view name, std::string_view data, const Stat& stat, int32_t child_creates,
              uint32_t acl_id, Kind kind);
// Stores `stat`, `child_creates` and, when `data` is given, new data. The node may move; the
// parent's slot follows (the caller re-points the root when `parent` is nullptr).
Node* UpdateNode(Node* parent, Node* n, const Stat& stat, int32_t child_creates,
                 const std::string_view* data);
// Frees a node that has no children.
void FreeNode(Node* n);
size_t NodeAllocBytes(const Node* n);

// Children: a small unordered array up to 8 entries, then an open-addressing table with linear
// probing. A slot holds the child pointer in its low 48 bits and 16 more hash bits on top, so a
// probe rarely touches a node whose name does not match.
Node* FindChild(const Node* parent, std::string_view name, uint64_t name_hash);
// The child must not be present already.
void AddChild(Node* parent, Node* child, uint64_t name_hash);
// Removes and returns the child (nullptr if absent).
Node* RemoveChild(Node* parent, std::string_view name, uint64_t name_hash);
size_t ChildSetAllocBytes(const Node* n);

struct ChildSet {
  uint32_t cap;
  uint32_t size;
  uint64_t slots[];  // 0 = empty
};

inline Node* SlotNode(uint64_t slot) {
  return reinterpret_cast<Node*>(static_cast<uintptr_t>(slot & ((uint64_t{1} << 48) - 1)));
}

inline int32_t Node::num_children() const {
  return children ? static_cast<int32_t>(children->size) : 0;
}

// Calls f(Node*) for each child, in no particular order.
template <typename F>
void ForEachChild(const Node* n, F&& f) {
  if (!n->children) return;
  const ChildSet* cs = n->children;
  for (uint32_t i = 0; i < cs->cap; i++) {
    if (cs->slots[i]) f(SlotNode(cs->slots[i]));
  }
}

}  // namespace qfs::tree::internal
