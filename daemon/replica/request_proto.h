// tree::Request <-> member.proto, for writes a learner forwards to its leader (docs/ensemble.md).
#pragma once

#include "daemon/tree/types.h"

namespace qfs {
namespace member {
class Request;
}

void ToProto(const tree::Request& r, member::Request* p);
// False if the message names a request or op type, or a node kind, this build does not know.
bool FromProto(const member::Request& p, tree::Request* r);

}  // namespace qfs
