// Small POSIX helpers shared by the log, snapshots and epoch files.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/util/result.h"

namespace qfs::storage {

// Creates `dir` (and parents) if missing.
Status EnsureDir(const std::string& dir);
// fsyncs a directory so that creates/renames/unlinks in it are durable.
Status FsyncDir(const std::string& dir);
// Writes `data` to dir/name atomically: temp file, write, fsync, rename, fsync dir.
Status WriteFileAtomic(const std::string& dir, const std::string& name, const std::string& data);
// kNotFound if the file does not exist.
Result<std::string> ReadFile(const std::string& path);
// Names (not paths) of the entries of `dir` that start with `prefix`, sorted. kNotFound if `dir`
// does not exist.
Result<std::vector<std::string>> ListDir(const std::string& dir, const std::string& prefix);
// Loops until every byte is written; returns the errno-based status on failure.
Status WriteAll(int fd, const void* data, size_t n, const std::string& what);

// Appends a framed record to `out`: [u32 len][u32 crc32c(len bytes + payload)][payload].
void AppendFrame(std::string* out, std::string_view payload);
constexpr size_t kFrameHeader = 8;
// Appends a framed LogRecord{zxid, payload} to `out`, encoded by hand: byte for byte what
// Protobuf writes, but the payload is copied once, straight from the caller's buffer into
// `out` (docs/ensemble.md, "Copies of a txn"). Returns the frame's size.
size_t AppendRecordFrame(std::string* out, uint64_t zxid, std::string_view payload);
// The size AppendRecordFrame gives for these.
size_t RecordFrameSize(uint64_t zxid, size_t payload_size);

// Outcome of decoding one frame from a buffer.
enum class FrameResult { kOk, kZero, kIncomplete, kBad };
// Decodes the frame at buf[pos..]. kZero: the length word is zero (preallocated space);
// kIncomplete: the buffer ends inside the frame; kBad: checksum mismatch or absurd length.
FrameResult DecodeFrame(std::string_view buf, size_t pos, size_t max_len, std::string_view* payload,
                        size_t* frame_size);

}  // namespace qfs::storage
