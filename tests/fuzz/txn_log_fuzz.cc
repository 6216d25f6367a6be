// libFuzzer target for txn log recovery (docs/fuzzing.md): arbitrary bytes as log segments go
// through the same Open the daemon runs at start. It either refuses (corruption named) or
// recovers entries with strictly increasing zxids, each a parsable txn or refused as the
// daemon's replay refuses it. Input: the first byte picks the mode; the rest is either one raw
// segment file, or records (fuzz_util.h), each a LogRecord payload that the harness frames with
// a valid CRC after the segment header; an empty record starts the next segment.
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/txn_log.h"
#include "daemon/proto/txn.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace qfs::fuzz {
namespace {

constexpr char kSegMagic[] = "QFSLOG01\0\0\0\0\0\0\0\0";  // 16 bytes: see txn_log.h
constexpr size_t kSegHeader = 16;

std::string SegmentPath(uint64_t first_zxid) {
  char name[40];
  snprintf(name, sizeof name, "/log.%016" PRIx64, first_zxid);
  return ScratchDir() + name;
}

void Clean() {
  auto names = storage::ListDir(ScratchDir(), "");
  if (!names.ok()) return;
  for (const std::string& n : *names) unlink((ScratchDir() + "/" + n).c_str());
}

// The segment's name must carry its first record's zxid; take it from the record if it has one.
uint64_t FirstZxid(std::string_view first_record) {
  storage::LogRecord rec;
  if (rec.ParseFromArray(first_record.data(), static_cast<int>(first_record.size())) &&
      rec.zxid() != 0) {
    return rec.zxid();
  }
  return 1;
}

void Recover() {
  storage::TxnLog::Options o;
  o.dir = ScratchDir();
  o.segment_bytes = 4096;
  o.sync = false;
  uint64_t last = 0;
  auto log = storage::TxnLog::Open(o, 0, [&](const storage::LogEntry& e) {
    Check(e.zxid > last);
    last = e.zxid;
    txn::Txn t;
    (void)t.ParseFromString(e.payload);
  });
  if (!log.ok()) {
    Check(!log.status().ToString().empty());
    return;
  }
  Check((*log)->last_zxid() == last);
  std::vector<storage::LogEntry> all;
  (*log)->ReadAfter(0, 1 << 20, &all);
  for (size_t i = 1; i < all.size(); ++i) Check(all[i].zxid > all[i - 1].zxid);
  (*log)->Close();
}

}  // namespace
}  // namespace qfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qfs::fuzz;
  uint8_t mode = 0;
  std::string_view in;
  if (!SplitMode(data, size, &mode, &in)) return 0;
  Clean();
  if (mode % 2 == 0) {
    WriteWholeFile(SegmentPath(1), in);
  } else {
    std::vector<std::string_view> recs = SplitRecords(in);
    size_t i = 0;
    for (int seg = 0; seg < 4 && i < recs.size(); ++seg) {
      std::string file(kSegMagic, kSegHeader);
      const uint64_t first = FirstZxid(recs[i]);
      for (; i < recs.size() && !recs[i].empty(); ++i) qfs::storage::AppendFrame(&file, recs[i]);
      if (i < recs.size()) ++i;  // the empty record that ends this segment
      WriteWholeFile(SegmentPath(first), file);
    }
  }
  Recover();
  Clean();
  return 0;
}
