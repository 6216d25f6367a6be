// A one-line summary of a write, computable both by the client that made it (from its request and
// reply) and from the txn stored in the log, so the crash test can match acknowledged writes.
#pragma once

#include <cstdio>
#include <string>

#include "consensus/util/checksum.h"
#include "daemon/proto/txn.pb.h"

namespace qfs::crashtest {

inline std::string HashHex(const std::string& data) {
  char b[20];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(Hash64(data)));
  return b;
}
inline std::string CreateSummary(const std::string& path, const std::string& data) {
  return "c " + path + " " + HashHex(data);
}
inline std::string SetSummary(const std::string& path, int32_t version, const std::string& data) {
  return "s " + path + " " + std::to_string(version) + " " + HashHex(data);
}
inline std::string DeleteSummary(const std::string& path) {
  return "d " + path;
}
inline std::string CheckSummary(const std::string& path) {
  return "k " + path;
}

inline std::string Summarize(const txn::Txn& t) {
  auto create = [](const txn::CreateTxn& c) { return CreateSummary(c.path(), c.data()); };
  auto set = [](const txn::SetDataTxn& s) { return SetSummary(s.path(), s.version(), s.data()); };
  switch (t.op_case()) {
    case txn::Txn::kCreate:
      return create(t.create());
    case txn::Txn::kSetData:
      return set(t.set_data());
    case txn::Txn::kDelete:
      return DeleteSummary(t.delete_().path());
    case txn::Txn::kMulti: {
      std::string s = "m";
      for (const auto& op : t.multi().ops()) {
        s += op.has_create()     ? " [" + create(op.create()) + "]"
             : op.has_set_data() ? " [" + set(op.set_data()) + "]"
             : op.has_delete_()  ? " [" + DeleteSummary(op.delete_().path()) + "]"
                                 : " [" + CheckSummary(op.check().path()) + "]";
      }
      return s;
    }
    default:
      return "other";
  }
}

}  // namespace qfs::crashtest
