// The shared ACL table (as ZooKeeper's ReferenceCountedACLCache): equal ACL lists share one
// refcounted entry and nodes store its 32-bit id. A new list takes the smallest free id, so ids
// depend only on the table's current contents: members that loaded a snapshot and members that
// replayed the log assign the same ids from then on.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/proto/txn.pb.h"
#include "daemon/tree/types.h"

namespace qfs::tree::internal {

using ProtoAcls = google::protobuf::RepeatedPtrField<txn::Acl>;

// Content hash of an ACL list (order matters, as ZooKeeper compares lists).
uint64_t AclHash(const std::vector<Acl>& acl);
uint64_t AclHash(const ProtoAcls& acl);
std::vector<Acl> AclFromProto(const ProtoAcls& acl);

class AclTable {
 public:
  struct Entry {
    std::vector<Acl> acl;
    uint64_t hash = 0;
    uint32_t refs = 0;  // 0 = free id
  };

  // Adds a reference to the entry for `acl`, creating it if needed; returns its id.
  uint32_t Ref(const ProtoAcls& acl);
  uint32_t Ref(const std::vector<Acl>& acl);
  // Snapshot load: adds a reference to an installed entry; false if `id` has none.
  bool RefInstalled(uint32_t id);
  void Unref(uint32_t id);

  bool Has(uint32_t id) const { return id < entries_.size() && entries_[id].refs > 0; }
  const Entry& Get(uint32_t id) const { return entries_[id]; }
  uint64_t HashOf(uint32_t id) const { return entries_[id].hash; }

  // Snapshot load: places `acl` at `id` with no references. False if the id or the content is
  // taken already.
  bool Install(uint32_t id, std::vector<Acl> acl);
  // Snapshot load: true if every installed entry got a reference.
  bool AllReferenced() const;

  // Live entries in id order.
  template <typename F>
  void ForEach(F&& f) const {
    for (uint32_t i = 0; i < entries_.size(); i++) {
      if (entries_[i].refs > 0) f(i, entries_[i]);
    }
  }
  size_t live_count() const { return by_hash_.size(); }
  size_t ApproxBytes() const;

 private:
  template <typename L>
  uint32_t RefImpl(const L& acl, uint64_t h);
  uint32_t TakeId();

  std::vector<Entry> entries_;
  // Ids below entries_.size() with refs == 0.
  std::set<uint32_t> free_;
  // Content hash -> id, for lookup; its iteration order never reaches any output.
  std::unordered_multimap<uint64_t, uint32_t> by_hash_;
};

}  // namespace qfs::tree::internal
