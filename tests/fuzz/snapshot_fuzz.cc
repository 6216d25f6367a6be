// libFuzzer target for loading a snapshot (docs/fuzzing.md): the file reader (footer, CRCs) and
// the tree built from its records, as a member does at start and after a snapshot transfer.
// Either it refuses with an error, or the tree it builds writes a snapshot that loads back to
// the same bytes. Input: the first byte picks the mode; the rest is either one raw snapshot file
// or the tree's records (fuzz_util.h) fed to the loader directly, past the file's CRCs.
#include <cstdint>
#include <string>
#include <vector>

#include "consensus/storage/snapshot_file.h"
#include "daemon/tree/data_tree.h"
#include "tests/fuzz/fuzz_util.h"

namespace qfs::fuzz {
namespace {

std::string Dump(const tree::DataTree& t) {
  std::string out;
  Check(t.WriteSnapshot([&](std::string_view rec) {
           out.append(std::to_string(rec.size())).append(":").append(rec);
           return Status::Ok();
         }).ok());
  return out;
}

// What loads writes records that load again to the same tree.
void CheckLoaded(const tree::DataTree& t) {
  std::vector<std::string> recs;
  Check(t.WriteSnapshot([&](std::string_view rec) {
           recs.emplace_back(rec);
           return Status::Ok();
         }).ok());
  size_t i = 0;
  auto again = tree::DataTree::LoadSnapshot(tree::TreeOptions{}, [&](std::string_view* r) {
    if (i == recs.size()) return false;
    *r = recs[i++];
    return true;
  });
  Check(again.ok());
  Check(Dump(**again) == Dump(t));
}

void LoadRecords(const std::vector<std::string_view>& recs) {
  size_t i = 0;
  auto t = tree::DataTree::LoadSnapshot(tree::TreeOptions{}, [&](std::string_view* r) {
    if (i == recs.size()) return false;
    *r = recs[i++];
    return true;
  });
  if (t.ok()) CheckLoaded(**t);
}

void LoadFile(std::string_view bytes) {
  const std::string path = ScratchDir() + "/snapshot.0000000000000001";
  WriteWholeFile(path, bytes);
  auto reader = storage::SnapshotReader::Open(path);
  if (!reader.ok()) return;
  storage::SnapshotReader& r = **reader;
  auto t = tree::DataTree::LoadSnapshot(tree::TreeOptions{},
                                        [&](std::string_view* rec) { return r.Next(rec); });
  if (t.ok()) CheckLoaded(**t);
}

}  // namespace
}  // namespace qfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qfs::fuzz;
  uint8_t mode = 0;
  std::string_view in;
  if (!SplitMode(data, size, &mode, &in)) return 0;
  if (mode % 2 == 0) {
    LoadFile(in);
  } else {
    LoadRecords(SplitRecords(in));
  }
  return 0;
}
