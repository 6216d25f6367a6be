// libFuzzer target for the config parser (docs/fuzzing.md): any text parses or is refused with
// an error naming the line; nothing else.
#include <cstdint>
#include <string>

#include "daemon/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = qfs::ParseConfig(text);
  if (!c.ok()) {
    qfs::fuzz::Check(!c.status().ToString().empty());
    return 0;
  }
  // Parsing is a function of the text.
  auto again = qfs::ParseConfig(text);
  qfs::fuzz::Check(again.ok() && again->client_port == c->client_port &&
                   again->data_dir == c->data_dir && again->tick_time_ms == c->tick_time_ms);
  return 0;
}
