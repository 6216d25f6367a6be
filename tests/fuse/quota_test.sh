#!/usr/bin/env bash
# Hard quotas through the mount (docs/quotas.md, docs/fuse.md "errno table"): with
# enforceQuota=true a create or write past a hard limit fails with EDQUOT at its syscall, seen
# by the shell's own builtins (mkdir, echo > f, echo >> f); usage stays what a walk says.
#   QUORUMFSD=.../quorumfsd quota_test.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
zk() { "$PY" "$here/zk.py" "$PORT_a" "$@"; }
EDQUOT_MSG="Disk quota exceeded"

qfs_start a enforceQuota=true
M=$MNT_a
mkdir "$M/qd"
# What zkCli's `setquota -N 3 /qd` and `setquota -B 10 /qd` leave (writes under /zookeeper are
# not the mount's: EPERM there).
zk create /zookeeper/quota/qd >/dev/null
zk create /zookeeper/quota/qd/zookeeper_limits \
  'count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3' >/dev/null
zk create /zookeeper/quota/qd/zookeeper_stats 'count=0,bytes=0' >/dev/null
usage() { zk get /zookeeper/quota/qd/zookeeper_stats; }
check "a quota on an existing node counts it" test "$(usage)" = "count=1,bytes=0"

check "echo > new file within the quota" sh -c "echo 12345 > '$M/qd/f1'"
check "mkdir within the quota" mkdir "$M/qd/d1"
check "usage: 3 nodes, 6 bytes" test "$(usage)" = "count=3,bytes=6"

check "mkdir past the count limit: EDQUOT" test "$(msg_of mkdir "$M/qd/d2")" = "$EDQUOT_MSG"
check "  nothing created" test ! -e "$M/qd/d2"
out=$(bash -c "echo x > '$M/qd/f2'" 2>&1); rc=$?
check "builtin echo > new file past the count limit exits non-zero" test $rc -ne 0
check "  with EDQUOT ($out)" test "${out##*: }" = "$EDQUOT_MSG"
check "  nothing created" test ! -e "$M/qd/f2"

out=$(bash -c "echo 1234567890 > '$M/qd/f1'" 2>&1); rc=$?
check "builtin echo > file past the bytes limit exits non-zero" test $rc -ne 0
check "  with EDQUOT at write() ($out)" test "${out##*: }" = "$EDQUOT_MSG"
check "  the file is unchanged" test "$(cat "$M/qd/f1")" = "12345"
check "echo >> within the quota" sh -c "echo 12 >> '$M/qd/f1'"
out=$(bash -c "echo 12 >> '$M/qd/f1'" 2>&1); rc=$?
check "builtin echo >> past the bytes limit exits non-zero with EDQUOT ($out)" \
  test $rc -ne 0 -a "${out##*: }" = "$EDQUOT_MSG"
check "usage: 3 nodes, 9 bytes" test "$(usage)" = "count=3,bytes=9"

check "rmdir makes room" rmdir "$M/qd/d1"
check "mkdir fits again" mkdir "$M/qd/d2"
check "a smaller rewrite fits" sh -c "echo 1 > '$M/qd/f1'"
check "usage: 3 nodes, 2 bytes" test "$(usage)" = "count=3,bytes=2"
check "writes outside the quota'd path are not limited" sh -c "echo 123456789012345 > '$M/free'"
finish
