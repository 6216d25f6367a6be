#include "consensus/transport/frame_mac.h"

namespace qfs::transport {

std::string FrameMac::Tag(std::string_view frame) {
  char seq[8];
  for (int i = 0; i < 8; ++i) seq[i] = static_cast<char>(seq_ >> (8 * i));
  const Sha256Digest d = key_.Mac(std::string_view(seq, sizeof seq), frame);
  return std::string(reinterpret_cast<const char*>(d.data()), kFrameTagBytes);
}

std::string FrameMac::NextTag(std::string_view frame) {
  std::string t = Tag(frame);
  ++seq_;
  return t;
}

bool FrameMac::CheckNext(std::string_view frame, std::string_view tag) {
  if (!ConstantTimeEqual(Tag(frame), tag)) return false;
  ++seq_;
  return true;
}

}  // namespace qfs::transport
