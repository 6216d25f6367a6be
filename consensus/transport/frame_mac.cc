#include "consensus/transport/frame_mac.h"

#include <cstring>

namespace qfs::transport {

// Tags are computed into a digest on the stack: a 16-byte std::string is a heap allocation,
// one per frame sent and received.
Sha256Digest FrameMac::Digest(std::string_view frame) {
  char seq[8];
  for (int i = 0; i < 8; ++i) seq[i] = static_cast<char>(seq_ >> (8 * i));
  return key_.Mac(std::string_view(seq, sizeof seq), frame);
}

std::string FrameMac::NextTag(std::string_view frame) {
  std::string t(kFrameTagBytes, '\0');
  NextTagInto(frame, t.data());
  return t;
}

void FrameMac::NextTagInto(std::string_view frame, char* out) {
  const Sha256Digest d = Digest(frame);
  std::memcpy(out, d.data(), kFrameTagBytes);
  ++seq_;
}

bool FrameMac::CheckNext(std::string_view frame, std::string_view tag) {
  const Sha256Digest d = Digest(frame);
  const std::string_view want(reinterpret_cast<const char*>(d.data()), kFrameTagBytes);
  if (!ConstantTimeEqual(want, tag)) return false;
  ++seq_;
  return true;
}

}  // namespace qfs::transport
