#include "daemon/tree/types.h"

namespace qfs::tree {

const char* ErrName(Err e) {
  // ZooKeeper's KeeperException.Code names, so logs read the same as ZooKeeper's.
  switch (e) {
    case Err::kOk:
      return "OK";
    case Err::kSystemError:
      return "SYSTEMERROR";
    case Err::kRuntimeInconsistency:
      return "RUNTIMEINCONSISTENCY";
    case Err::kDataInconsistency:
      return "DATAINCONSISTENCY";
    case Err::kConnectionLoss:
      return "CONNECTIONLOSS";
    case Err::kMarshallingError:
      return "MARSHALLINGERROR";
    case Err::kUnimplemented:
      return "UNIMPLEMENTED";
    case Err::kOperationTimeout:
      return "OPERATIONTIMEOUT";
    case Err::kBadArguments:
      return "BADARGUMENTS";
    case Err::kUnknownSession:
      return "UNKNOWNSESSION";
    case Err::kNewConfigNoQuorum:
      return "NEWCONFIGNOQUORUM";
    case Err::kReconfigInProgress:
      return "RECONFIGINPROGRESS";
    case Err::kApiError:
      return "APIERROR";
    case Err::kNoNode:
      return "NONODE";
    case Err::kNoAuth:
      return "NOAUTH";
    case Err::kBadVersion:
      return "BADVERSION";
    case Err::kNoChildrenForEphemerals:
      return "NOCHILDRENFOREPHEMERALS";
    case Err::kNodeExists:
      return "NODEEXISTS";
    case Err::kNotEmpty:
      return "NOTEMPTY";
    case Err::kSessionExpired:
      return "SESSIONEXPIRED";
    case Err::kInvalidCallback:
      return "INVALIDCALLBACK";
    case Err::kInvalidAcl:
      return "INVALIDACL";
    case Err::kAuthFailed:
      return "AUTHFAILED";
    case Err::kSessionMoved:
      return "SESSIONMOVED";
    case Err::kNotReadOnly:
      return "NOTREADONLY";
    case Err::kEphemeralOnLocalSession:
      return "EPHEMERALONLOCALSESSION";
    case Err::kNoWatcher:
      return "NOWATCHER";
    case Err::kReconfigDisabled:
      return "RECONFIGDISABLED";
    case Err::kSessionClosedRequireSaslAuth:
      return "SESSIONCLOSEDREQUIRESASLAUTH";
    case Err::kQuotaExceeded:
      return "QUOTAEXCEEDED";
    case Err::kThrottledOp:
      return "THROTTLEDOP";
  }
  return "UNKNOWN";
}

std::vector<Acl> OpenAcl() {
  return {Acl{perm::kAll, Id{"world", "anyone"}}};
}

bool IsSequential(CreateMode m) {
  return m == CreateMode::kPersistentSequential || m == CreateMode::kEphemeralSequential ||
         m == CreateMode::kPersistentSequentialWithTtl;
}

bool IsEphemeral(CreateMode m) {
  return m == CreateMode::kEphemeral || m == CreateMode::kEphemeralSequential;
}

bool IsTtl(CreateMode m) {
  return m == CreateMode::kPersistentWithTtl || m == CreateMode::kPersistentSequentialWithTtl;
}

}  // namespace qfs::tree
