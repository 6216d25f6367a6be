// libFuzzer target for what a member decodes from a peer connection (docs/fuzzing.md): the
// handshake messages and their checks, then the stream of frames and their MAC tags, each
// frame a PeerMessage, with the
// txns proposals carry and the daemon's own messages (forwarded requests) inside.
// Input: the first byte picks the mode; the rest is either a raw byte stream (as read from the
// socket) or records (fuzz_util.h) that the harness frames with valid CRCs.
#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/proto/peer.pb.h"
#include "consensus/proto/transport.pb.h"
#include "consensus/transport/frame.h"
#include "consensus/transport/frame_mac.h"
#include "consensus/transport/handshake.h"
#include "daemon/proto/member.pb.h"
#include "daemon/proto/txn.pb.h"
#include "daemon/replica/request_proto.h"
#include "daemon/tree/types.h"
#include "tests/fuzz/fuzz_util.h"

namespace qfs::fuzz {
namespace {

constexpr size_t kMaxFrame = 1 << 20;

void Handshake(std::string_view payload) {
  transport::Challenge ch;
  if (ch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    (void)ch.nonce().size();
  }
  transport::Welcome w;
  (void)w.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  transport::Hello h;
  if (!h.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  // A forged Hello never passes: the MAC is over a nonce the fuzzer cannot know.
  const std::string nonce(transport::kNonceBytes, 'n');
  Check(!transport::CheckHello(h, nonce, 1, {1, 2, 3}, "ensemble-secret").empty());
}

// Forwarded requests convert to tree::Request and back to the same message.
void Forwarded(const member::Request& p) {
  tree::Request r;
  if (!FromProto(p, &r)) return;
  member::Request again;
  ToProto(r, &again);
  tree::Request r2;
  Check(FromProto(again, &r2));
  member::Request third;
  ToProto(r2, &third);
  Check(again.SerializeAsString() == third.SerializeAsString());
}

void App(const std::string& bytes) {
  member::AppMessage m;
  if (!m.ParseFromString(bytes)) return;
  if (m.has_forward()) Forwarded(m.forward().request());
  if (m.has_touch()) (void)m.touch().session_ids_size();
}

void Txn(const std::string& payload) {
  txn::Txn t;
  if (!t.ParseFromString(payload)) return;
  txn::Txn back;
  Check(back.ParseFromString(t.SerializeAsString()));
}

void Message(std::string_view payload) {
  peer::PeerMessage msg;
  if (!msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  switch (msg.body_case()) {
    case peer::PeerMessage::kZab:
      if (msg.zab().has_proposal()) Txn(msg.zab().proposal().payload());
      if (msg.zab().has_inform()) Txn(msg.zab().inform().txn().payload());
      break;
    case peer::PeerMessage::kApp:
      App(msg.app());
      break;
    default:
      break;
  }
}

constexpr std::string_view kKey = "frame-key";

// Frames as the transport's reader takes them, each followed by its MAC tag after the
// handshake: stop at the first incomplete or bad one (the transport closes the connection there).
void Stream(std::string_view buf, bool first_is_handshake) {
  bool first = true;
  transport::FrameMac mac(kKey);
  while (!buf.empty()) {
    std::string_view payload;
    size_t size = 0;
    const transport::FrameStatus st = transport::DecodeFrame(buf, kMaxFrame, &payload, &size);
    if (st != transport::FrameStatus::kOk) {
      if (st == transport::FrameStatus::kIncomplete && size != 0) Check(size > buf.size());
      return;
    }
    Check(size >= transport::kFrameHeader && size <= buf.size());
    Check(payload.size() == size - transport::kFrameHeader);
    if (first && first_is_handshake) {
      Handshake(payload);
      first = false;
      buf.remove_prefix(size);
      continue;
    }
    first = false;
    if (buf.size() < size + transport::kFrameTagBytes) return;
    if (!mac.CheckNext(buf.substr(0, size), buf.substr(size, transport::kFrameTagBytes))) return;
    Message(payload);
    buf.remove_prefix(size + transport::kFrameTagBytes);
  }
}

}  // namespace
}  // namespace qfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qfs::fuzz;
  uint8_t mode = 0;
  std::string_view in;
  if (!SplitMode(data, size, &mode, &in)) return 0;
  if (mode % 3 == 0) {
    Stream(in, /*first_is_handshake=*/false);
  } else {
    // Framed with valid CRCs, and sealed with valid MACs after the handshake, as a member with
    // the secret would send them.
    std::string framed;
    qfs::transport::FrameMac mac(kKey);
    bool first = true;
    for (std::string_view rec : SplitRecords(in)) {
      std::string f;
      qfs::transport::AppendFrame(&f, rec);
      framed += f;
      if (!(first && mode % 3 == 2)) framed += mac.NextTag(f);
      first = false;
    }
    Stream(framed, /*first_is_handshake=*/mode % 3 == 2);
  }
  return 0;
}
