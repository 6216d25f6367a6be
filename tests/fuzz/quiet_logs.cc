// Linked into the fuzz targets whose code logs: WARNs on every refused input would drown the
// fuzzer's own output.
#include "consensus/util/log.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qfs::SetLogLevel(qfs::LogLevel::kError);
  return 0;
}
