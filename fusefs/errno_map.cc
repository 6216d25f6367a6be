#include "fusefs/errno_map.h"

#include <cerrno>

namespace qfs::fusefs {

static_assert(kConflictErrno == ESTALE && kNoQuorumErrno == ETIMEDOUT);

int ErrnoOf(tree::Err e) {
  using tree::Err;
  switch (e) {
    case Err::kOk:
      return 0;
    case Err::kNoNode:
      return ENOENT;
    case Err::kNodeExists:
      return EEXIST;
    case Err::kNotEmpty:
      return ENOTEMPTY;
    case Err::kBadVersion:
      return kConflictErrno;
    case Err::kNoChildrenForEphemerals:
      return EOPNOTSUPP;
    case Err::kNoAuth:
    case Err::kAuthFailed:
      return EACCES;
    case Err::kBadArguments:
    case Err::kInvalidAcl:
    case Err::kApiError:
      return EINVAL;
    case Err::kConnectionLoss:
    case Err::kOperationTimeout:
      return kNoQuorumErrno;
    case Err::kNotReadOnly:
      return EROFS;  // the member is in read-only mode (docs/read-only.md)
    case Err::kSessionExpired:
    case Err::kSessionMoved:
    case Err::kUnknownSession:
      return ECONNRESET;
    case Err::kQuotaExceeded:
      return EDQUOT;
    case Err::kThrottledOp:
      return EAGAIN;
    case Err::kMarshallingError:
      return EFBIG;
    case Err::kUnimplemented:
      return ENOSYS;
    default:
      return EIO;  // kSystemError (the leader's disk) and inconsistencies: a server fault
  }
}

}  // namespace qfs::fusefs
