// Frames on peer connections: [u32 length][u32 crc32c][payload], little-endian, the CRC taken
// over the length word and the payload (the same layout as the txn log's records).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qfs::transport {

constexpr size_t kFrameHeader = 8;

// Fills the 8-byte header at `hdr` for the `len` payload bytes that follow it.
void WriteFrameHeader(char* hdr, uint32_t len);
// Appends a whole frame for `payload` to *out.
void AppendFrame(std::string* out, std::string_view payload);

enum class FrameStatus {
  kOk,
  kIncomplete,   // the buffer ends inside the frame
  kTooLarge,     // the length word exceeds the limit
  kBadChecksum,  // the CRC does not match
};

// Decodes the frame at the start of `buf`. On kOk sets *payload and *frame_size (header
// included). On kIncomplete, *frame_size is the whole frame's size once the header is in the
// buffer, else 0. On kTooLarge, *frame_size is the announced payload length.
FrameStatus DecodeFrame(std::string_view buf, size_t max_payload, std::string_view* payload,
                        size_t* frame_size);

}  // namespace qfs::transport
