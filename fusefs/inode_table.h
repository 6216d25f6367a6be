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
#include <utility>
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

  // Pending creates by name (docs/fuse.md, "Creating"): a file created through the mount is
  // visible on it from its open(O_CREAT) on. Rebind (the commit) and Forget drop the name.
  void AddPending(uint64_t id);
  // The pending create named `path` (+1 lookup), or 0.
  uint64_t RefPending(const std::string& path);
  uint64_t FindPending(const std::string& path) const;
  // The name goes (an unlink, or a commit that failed); the inode lives on for its handles.
  void DropPending(uint64_t id);
  // A rename of a pending create: it will be created under `path`.
  void MovePending(uint64_t id, const std::string& path);
  // The pending creates directly under directory `dir`: (name, id).
  std::vector<std::pair<std::string, uint64_t>> PendingUnder(const std::string& dir) const;
  size_t size() const;
  std::vector<uint64_t> Ids() const;

 private:
  void ErasePendingLocked(uint64_t id, const std::string& path);
  static std::string Key(const std::string& path, bool is_data) {
    return is_data ? path + std::string("\0d", 2) : path;
  }
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Inode> by_id_;
  std::unordered_map<std::string, uint64_t> by_path_;
  std::unordered_map<std::string, uint64_t> pending_;  // path of a pending create -> its id
  uint64_t next_ = 2;
};

}  // namespace qfs::fusefs
