#include "consensus/transport/frame.h"

#include "consensus/util/checksum.h"

namespace qfs::transport {
namespace {

void StoreLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t LoadLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void WriteFrameHeader(char* hdr, uint32_t len) {
  StoreLe32(hdr, len);
  uint32_t crc = Crc32c(0, hdr, 4);
  crc = Crc32c(crc, hdr + kFrameHeader, len);
  StoreLe32(hdr + 4, crc);
}

void AppendFrame(std::string* out, std::string_view payload) {
  size_t at = out->size();
  out->resize(at + kFrameHeader);
  out->append(payload);
  WriteFrameHeader(out->data() + at, static_cast<uint32_t>(payload.size()));
}

FrameStatus DecodeFrame(std::string_view buf, size_t max_payload, std::string_view* payload,
                        size_t* frame_size) {
  *frame_size = 0;
  if (buf.size() < kFrameHeader) return FrameStatus::kIncomplete;
  const uint32_t len = LoadLe32(buf.data());
  if (len > max_payload) {
    *frame_size = len;
    return FrameStatus::kTooLarge;
  }
  *frame_size = kFrameHeader + len;
  if (buf.size() < kFrameHeader + len) return FrameStatus::kIncomplete;
  uint32_t crc = Crc32c(0, buf.data(), 4);
  crc = Crc32c(crc, buf.data() + kFrameHeader, len);
  if (crc != LoadLe32(buf.data() + 4)) return FrameStatus::kBadChecksum;
  *payload = buf.substr(kFrameHeader, len);
  return FrameStatus::kOk;
}

}  // namespace qfs::transport
