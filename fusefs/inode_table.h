// FUSE node ids for znodes. A node id names one incarnation of a znode seen as one type: the
// kernel cannot change an inode's type, and a re-created node must not look like the old one.
// So the key is (path, czxid, is_dir, is_data); a new incarnation or a type flip gets a new id,
// and the old id lives on (answering with its old type) until the kernel forgets it.
// Node ids are never reused. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace qfs::fusefs {

inline constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID

struct Inode {
  std::string path;   // the znode's path ("/" for the root)
  int64_t czxid = 0;  // 0 while a created file is not committed yet
  bool is_dir = false;
  bool is_data = false;  // the synthetic `.data` file of directory `path`
  bool pending = false;  // created by open(O_CREAT|...), committed at close
  bool ghost = false;    // answers the notifier's delete echo for a node that is gone
  uint64_t nlookup = 0;
  int64_t page_mzxid = -1;  // mzxid of the data last served into the kernel's page cache
};

class InodeTable {
 public:
  InodeTable();

  // The id for this incarnation (reused if current, else a new one made current); +1 lookup.
  uint64_t Ref(const std::string& path, int64_t czxid, bool is_dir, bool is_data);
  // A fresh id not registered under the path (pending creates, ghosts); +1 lookup.
  uint64_t RefDetached(const Inode& in);
  // Makes `id` the current id of `path` (a pending create committed, or a rename).
  void Rebind(uint64_t id, const std::string& path, int64_t czxid);
  bool Get(uint64_t id, Inode* out) const;
  void Forget(uint64_t id, uint64_t n);
  // Current id of a path (0: the kernel knows no inode for it).
  uint64_t Find(const std::string& path, bool is_data = false) const;
  // Someone may watch it: the kernel holds the current inode of `path`.
  bool Held(const std::string& path) const { return Find(path) != 0; }
  void SetPageMzxid(uint64_t id, int64_t mzxid);
  size_t size() const;
  std::vector<uint64_t> Ids() const;

 private:
  static std::string Key(const std::string& path, bool is_data) {
    return is_data ? path + std::string("\0d", 2) : path;
  }
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Inode> by_id_;
  std::unordered_map<std::string, uint64_t> by_path_;
  uint64_t next_ = 2;
};

}  // namespace qfs::fusefs
