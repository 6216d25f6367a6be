// Every frame after the handshake carries a MAC (peer_transport.h): a tag of kFrameTagBytes
// after the frame, the first bytes of HMAC-SHA-256 under the connection's frame key, over the
// frame's sequence number on that connection (u64, little-endian, from 0) and the frame's
// bytes (header and payload). The sequence number makes a dropped, repeated or reordered frame
// fail like an altered one; the per-connection key (handshake.h, FrameKey) makes a frame of
// another connection or member fail too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/util/sha256.h"

namespace qfs::transport {

constexpr size_t kFrameTagBytes = 16;

class FrameMac {
 public:
  explicit FrameMac(std::string_view key) : key_(key) {}
  // The tag of the next frame to send; advances the sequence number.
  std::string NextTag(std::string_view frame);
  // The same, written to out[0..kFrameTagBytes) (no allocation: the sender seals in place).
  void NextTagInto(std::string_view frame, char* out);
  // True if `tag` is the tag of the next frame expected; advances the sequence number only then.
  bool CheckNext(std::string_view frame, std::string_view tag);

 private:
  // The full HMAC of (sequence number, frame); a tag is its first kFrameTagBytes.
  Sha256Digest Digest(std::string_view frame);
  HmacSha256Key key_;
  uint64_t seq_ = 0;
};

}  // namespace qfs::transport
