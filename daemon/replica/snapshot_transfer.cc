// Snapshots between members (docs/ensemble.md, "Sync"): the leader writes one and streams it
// to a learner, holding that learner's messages behind the stream; the learner receives the
// chunks into a file and installs it.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/util/log.h"
#include "daemon/replica/pipeline_impl.h"

namespace qfs {

using namespace replica;  // NOLINT: the helpers of pipeline_impl.h
using tree::Err;

void Pipeline::Impl::DropReceive() {
  if (recv.fd >= 0) close(recv.fd);
  if (recv.active) unlink(recv.path.c_str());
  recv = Receive();
}

// The leader streams a snapshot ahead of the SyncStart(SNAP) that names it: store it, and install
// it when the core asks (Ready.install_snapshot).
void Pipeline::Impl::HandleChunk(uint64_t from, const peer::SnapshotChunk& c) {
  core->Progress(from);
  if (c.keepalive()) return;
  if (c.offset() == 0) {
    DropReceive();
    recv.active = true;
    recv.from = from;
    recv.zxid = c.zxid();
    recv.path = store_options.data_dir + "/snapshot.received.tmp";
    recv.fd = open(recv.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (recv.fd < 0) QFS_FATAL("cannot create %s: %s", recv.path.c_str(), strerror(errno));
    QLOG_INFO("receiving a snapshot at zxid %s from member %llu (%llu bytes)",
              Hex(c.zxid()).c_str(), static_cast<unsigned long long>(from),
              static_cast<unsigned long long>(c.total_bytes()));
  }
  if (!recv.active || recv.complete || recv.from != from || c.zxid() != recv.zxid ||
      c.offset() != recv.bytes) {
    QLOG_WARN("unexpected snapshot chunk from member %llu (zxid %s offset %llu); ignored",
              static_cast<unsigned long long>(from), Hex(c.zxid()).c_str(),
              static_cast<unsigned long long>(c.offset()));
    return;
  }
  const std::string& d = c.data();
  size_t off = 0;
  while (off < d.size()) {
    ssize_t w = write(recv.fd, d.data() + off, d.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      QFS_FATAL("writing the snapshot from the leader to %s: %s", recv.path.c_str(),
                strerror(errno));
    off += static_cast<size_t>(w);
  }
  recv.bytes += d.size();
  if (!c.last()) return;
  if (fsync(recv.fd) != 0) QFS_FATAL("fsync %s: %s", recv.path.c_str(), strerror(errno));
  close(recv.fd);
  recv.fd = -1;
  recv.complete = true;
}

void Pipeline::Impl::InstallSnapshot(uint64_t zxid) {
  if (!recv.active || !recv.complete || recv.zxid != zxid) {
    QLOG_ERROR("the leader announced a snapshot at zxid %s that did not arrive whole",
               Hex(zxid).c_str());
    DropReceive();
    return;  // the leader gives up on this learner after initLimit; it syncs again
  }
  QLOG_INFO("installing the leader's snapshot at zxid %s (%llu bytes)", Hex(zxid).c_str(),
            static_cast<unsigned long long>(recv.bytes));
  std::string path = recv.path;
  recv = Receive();
  {
    std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
    p->store_->WaitSnapshot();
  }
  Status st = InstallReceivedSnapshot(p->store_.get(), path, zxid);
  if (!st.ok()) QFS_FATAL("installing the leader's snapshot: %s", st.ToString().c_str());
  ReloadStore("installed the leader's snapshot");
  LearnFromTree();
  QFS_CHECK(static_cast<uint64_t>(p->store_->tree().last_zxid()) == zxid);
  {
    std::lock_guard<std::mutex> l(mu);
    stats.snapshots_received++;
  }
  core->SnapshotInstalled(zxid);
}

void Pipeline::Impl::Send(uint64_t to, peer::PeerMessage&& m) {
  if (!net) return;
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(to);
  if (it != transfers.end()) {  // behind the snapshot stream
    it->second->held.push_back(std::move(m));
    return;
  }
  net->Send(to, m);
}

void Pipeline::Impl::SendToMany(const std::vector<uint64_t>& to, peer::PeerMessage&& m) {
  if (!net) return;
  std::vector<uint64_t> now;
  std::lock_guard<std::mutex> l(hold_mu);
  for (uint64_t peer : to) {
    auto it = transfers.find(peer);
    if (it != transfers.end()) {
      it->second->held.push_back(m);  // behind the snapshot stream: a copy of its own
    } else {
      now.push_back(peer);
    }
  }
  if (!now.empty()) net->Send(now, m);
}

void Pipeline::Impl::StartTransfer(uint64_t peer) {
  Store& s = *p->store_;
  if (s.snapshot_running()) s.WaitSnapshot();  // the stream needs the tree as it is right now
  uint64_t zxid = static_cast<uint64_t>(s.tree().last_zxid());
  auto t = std::make_shared<Transfer>();
  t->peer = peer;
  t->zxid = zxid;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    transfers[peer] = t;
  }
  if (!s.StartSnapshot()) {
    QLOG_WARN("cannot take a snapshot for member %llu", static_cast<unsigned long long>(peer));
    AbortTransfer(peer);
    core->Disconnected(peer);
    return;
  }
  QLOG_INFO("sending a snapshot at zxid %s to member %llu", Hex(zxid).c_str(),
            static_cast<unsigned long long>(peer));
}

void Pipeline::Impl::PollTransfers() {
  std::vector<std::shared_ptr<Transfer>> ready;
  std::vector<uint64_t> busy;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    if (transfers.empty()) return;
    for (auto& [peer, t] : transfers) {
      busy.push_back(peer);
      if (!t->streaming) ready.push_back(t);
    }
  }
  // A transfer in progress keeps both sides' initLimit timers from firing: the learner hears
  // keepalives while the snapshot is written, then chunks.
  auto now = Clock::now();
  for (uint64_t peer : busy) core->Progress(peer);
  for (auto& t : ready) {
    if (now < t->next_keepalive) continue;
    t->next_keepalive = now + std::chrono::milliseconds(kKeepaliveMs);
    peer::PeerMessage m;
    m.mutable_chunk()->set_zxid(t->zxid);
    m.mutable_chunk()->set_keepalive(true);
    net->Send(t->peer, m);
  }
  if (ready.empty()) return;
  Store& s = *p->store_;
  s.PollSnapshot();
  if (s.snapshot_running()) return;
  for (auto& t : ready) {
    if (s.last_snapshot_zxid() != t->zxid) {
      QLOG_WARN("the snapshot for member %llu failed", static_cast<unsigned long long>(t->peer));
      AbortTransfer(t->peer);
      core->Disconnected(t->peer);
      continue;
    }
    t->streaming = true;
    std::string path = store_options.data_dir + "/" + storage::SnapshotName(t->zxid);
    streamers.emplace_back([this, t, path] { Stream(t, path); });
  }
}

void Pipeline::Impl::Stream(std::shared_ptr<Transfer> t, std::string path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    QLOG_WARN("cannot open %s for member %llu: %s", path.c_str(),
              static_cast<unsigned long long>(t->peer), strerror(errno));
    return;  // the learner times out and syncs again
  }
  off_t size = lseek(fd, 0, SEEK_END);
  uint64_t off = 0;
  std::string buf(kChunkBytes, '\0');
  double t0 = NowMs();
  for (;;) {
    if (t->abort) {
      close(fd);
      return;
    }
    if (net->queued_bytes(t->peer) > kStreamQueueBytes) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      QLOG_WARN("reading %s: %s", path.c_str(), strerror(errno));
      close(fd);
      return;
    }
    peer::PeerMessage m;
    auto* c = m.mutable_chunk();
    c->set_zxid(t->zxid);
    c->set_offset(off);
    c->set_data(buf.data(), static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
    c->set_last(off >= static_cast<uint64_t>(size));
    c->set_total_bytes(static_cast<uint64_t>(size));
    net->Send(t->peer, m);
    if (c->last()) break;
  }
  close(fd);
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(t->peer);
  if (it == transfers.end() || it->second != t || t->abort) return;
  for (auto& m : t->held) net->Send(t->peer, m);
  transfers.erase(it);
  QLOG_INFO("snapshot at zxid %s sent to member %llu: %llu bytes in %.0f ms", Hex(t->zxid).c_str(),
            static_cast<unsigned long long>(t->peer), static_cast<unsigned long long>(off),
            NowMs() - t0);
  std::lock_guard<std::mutex> l2(mu);
  stats.snapshots_sent++;
}

void Pipeline::Impl::AbortTransfer(uint64_t peer) {
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(peer);
  if (it == transfers.end()) return;
  it->second->abort = true;
  transfers.erase(it);
}

}  // namespace qfs
