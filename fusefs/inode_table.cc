#include "fusefs/inode_table.h"

namespace qfs::fusefs {

InodeTable::InodeTable() {
  Inode root;
  root.path = "/";
  root.is_dir = true;
  root.nlookup = 1;  // the kernel never forgets the root
  by_id_[kRootId] = root;
  by_path_["/"] = kRootId;
}

uint64_t InodeTable::Ref(const std::string& path, int64_t czxid, bool is_dir, bool is_data) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key = Key(path, is_data);
  auto it = by_path_.find(key);
  if (it != by_path_.end()) {
    Inode& in = by_id_.at(it->second);
    if (it->second == kRootId ||
        (in.czxid == czxid && in.is_dir == is_dir && !in.pending && !in.ghost)) {
      in.nlookup++;
      return it->second;
    }
  }
  uint64_t id = next_++;
  Inode in;
  in.path = path;
  in.czxid = czxid;
  in.is_dir = is_dir;
  in.is_data = is_data;
  in.nlookup = 1;
  by_id_[id] = std::move(in);
  by_path_[key] = id;
  return id;
}

uint64_t InodeTable::RefDetached(const Inode& in) {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t id = next_++;
  Inode c = in;
  c.nlookup = 1;
  by_id_[id] = std::move(c);
  return id;
}

void InodeTable::Rebind(uint64_t id, const std::string& path, int64_t czxid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  Inode& in = it->second;
  std::string old_key = Key(in.path, in.is_data);
  auto p = by_path_.find(old_key);
  if (p != by_path_.end() && p->second == id) by_path_.erase(p);
  ErasePendingLocked(id, in.path);
  in.path = path;
  in.czxid = czxid;
  in.pending = false;
  in.ghost = false;
  by_path_[Key(path, in.is_data)] = id;
}

bool InodeTable::Get(uint64_t id, Inode* out) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  *out = it->second;
  return true;
}

void InodeTable::Forget(uint64_t id, uint64_t n) {
  if (id == kRootId) return;
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  Inode& in = it->second;
  in.nlookup = n >= in.nlookup ? 0 : in.nlookup - n;
  if (in.nlookup > 0) return;
  auto p = by_path_.find(Key(in.path, in.is_data));
  if (p != by_path_.end() && p->second == id) by_path_.erase(p);
  ErasePendingLocked(id, in.path);
  by_id_.erase(it);
}

uint64_t InodeTable::Find(const std::string& path, bool is_data) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_path_.find(Key(path, is_data));
  return it == by_path_.end() ? 0 : it->second;
}

void InodeTable::ErasePendingLocked(uint64_t id, const std::string& path) {
  auto p = pending_.find(path);
  if (p != pending_.end() && p->second == id) pending_.erase(p);
}

void InodeTable::AddPending(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !it->second.pending) return;
  pending_[it->second.path] = id;
}

uint64_t InodeTable::RefPending(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto p = pending_.find(path);
  if (p == pending_.end()) return 0;
  by_id_.at(p->second).nlookup++;
  return p->second;
}

uint64_t InodeTable::FindPending(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto p = pending_.find(path);
  return p == pending_.end() ? 0 : p->second;
}

void InodeTable::DropPending(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) ErasePendingLocked(id, it->second.path);
}

void InodeTable::MovePending(uint64_t id, const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !it->second.pending) return;
  ErasePendingLocked(id, it->second.path);
  it->second.path = path;
  pending_[path] = id;
}

std::vector<std::pair<std::string, uint64_t>> InodeTable::PendingUnder(
    const std::string& dir) const {
  std::lock_guard<std::mutex> l(mu_);
  std::string prefix = dir == "/" ? "/" : dir + "/";
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& [path, id] : pending_) {
    if (path.size() <= prefix.size() || !path.starts_with(prefix)) continue;
    std::string name = path.substr(prefix.size());
    if (name.find('/') == std::string::npos) out.emplace_back(std::move(name), id);
  }
  return out;
}

void InodeTable::SetPageMzxid(uint64_t id, int64_t mzxid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) it->second.page_mzxid = mzxid;
}

size_t InodeTable::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return by_id_.size();
}

std::vector<uint64_t> InodeTable::Ids() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<uint64_t> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, in] : by_id_) ids.push_back(id);
  return ids;
}

}  // namespace qfs::fusefs
