// libFuzzer target for the ZooKeeper wire decoders. Any input must decode or fail cleanly; what
// decodes must re-encode to the same length (the encoding is canonical up to null strings and
// non-zero bools) and decode again to the same request; conversions and reply encoders must
// accept whatever the decoder produced.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/server/jute.h"
#include "daemon/server/protocol.h"

namespace qfs::zk {
namespace {

void Check(bool cond) {
  if (!cond) abort();
}

void FuzzConnect(std::string_view in) {
  Result<ConnectRequest> c = DecodeConnect(in);
  if (!c.ok()) return;
  const std::string frame = EncodeConnectRequest(*c);
  Check(frame.size() == in.size() + 4);
  Result<ConnectRequest> back = DecodeConnect(std::string_view(frame).substr(4));
  Check(back.ok() && *back == *c);
  ConnectResponse rsp{0, c->timeout_ms, c->session_id, c->passwd, c->read_only};
  Check(EncodeConnectResponse(rsp, c->has_read_only).size() ==
        24 + c->passwd.size() + (c->has_read_only ? 1 : 0));
}

// Encodes a reply for a decoded multi (with the op at `fail` failing, or none if out of range)
// and walks it back.
void FuzzMultiResponse(const MultiRequest& m, size_t fail) {
  std::vector<tree::OpResult> results(m.ops.size());
  for (size_t i = 0; i < results.size(); ++i) {
    results[i].path = "/r";
    if (i == fail) results[i].err = tree::Err::kNoNode;
  }
  const std::string frame = EncodeMultiResponse({1, 2, 0}, m, results);
  const std::string_view payload = std::string_view(frame).substr(4);
  JuteReader r(payload);
  ReplyHeader h;
  Check(h.Read(r));
  for (size_t i = 0; i < m.ops.size(); ++i) {
    MultiHeader mh;
    Check(mh.Read(r) && !mh.done);
    if (fail < m.ops.size()) {
      IntResponse e;
      Check(mh.type == op::kError && e.Read(r) && e.value == mh.err);
      continue;
    }
    Check(mh.type == MultiResultType(m.ops[i]));
    bool ok = true;
    if (mh.type == op::kCreate) {
      PathResponse p;
      ok = p.Read(r);
    } else if (mh.type == op::kCreate2) {
      Create2Response p;
      ok = p.Read(r);
    } else if (mh.type == op::kSetData) {
      StatResponse p;
      ok = p.Read(r);
    }
    Check(ok);
  }
  MultiHeader end;
  Check(end.Read(r) && end.done && end.type == -1 && r.AtEnd());
}

void FuzzRequest(std::string_view in, size_t max_buffer) {
  Result<ClientRequest> req = DecodeRequest(in, max_buffer);
  if (!req.ok()) return;
  const std::string frame = EncodeRequest(*req);
  if (!req->unimplemented) Check(frame.size() == in.size() + 4);
  Result<int32_t> len = DecodeFrameLength(std::string_view(frame).substr(0, 4), frame.size());
  Check(len.ok() && static_cast<size_t>(*len) == frame.size() - 4);
  Result<ClientRequest> back = DecodeRequest(std::string_view(frame).substr(4), max_buffer);
  Check(back.ok() && *back == *req);

  tree::Request tr;
  const tree::Err err = ToTreeRequest(*req, 0x100, {}, &tr);
  Check(IsWriteRequest(req->type()) && !req->unimplemented ? err != tree::Err::kUnimplemented
                                                           : err == tree::Err::kUnimplemented);
  if (const auto* m = std::get_if<MultiRequest>(&req->body)) {
    if (req->type() == op::kMulti) {
      Check(err == tree::Err::kOk && tr.ops.size() == m->ops.size());
      FuzzMultiResponse(*m, in.size() % (m->ops.size() + 1));
    }
  }
}

}  // namespace
}  // namespace qfs::zk

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  qfs::zk::FuzzConnect(in);
  qfs::zk::FuzzRequest(in, qfs::zk::kDefaultMaxBuffer);
  qfs::zk::FuzzRequest(in, 8);  // exercises the length limit on short fields
  if (size >= 4) (void)qfs::zk::DecodeFrameLength(in.substr(0, 4));
  return 0;
}
