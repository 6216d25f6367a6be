#!/usr/bin/env bash
# Faults on one member: clean unmount on SIGTERM (ephemerals go at once), kill -9 (a stale mount
# that the next start detaches; the dead mount's @eph locks expire after the session timeout and
# a waiting shell gets them), and a member that cannot make writes durable (its log on memfs
# with fsync held): writes fail after mount.writeTimeoutMs with ETIMEDOUT, reads keep working,
# Ctrl-C (SIGINT) interrupts a blocked write with EINTR.
#   QUORUMFSD=.../quorumfsd MEMFS=.../memfs faults_test.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
MEMFS=$(realpath "${MEMFS:?set MEMFS to the memfs binary}")
R=$(cd "$here/../../scripts/recipes" && pwd)
ZK="$PY $here/zk.py"
cd "$QFS_TMP"

echo "== SIGTERM: clean unmount, the session closes, its ephemerals go at once"
qfs_start a
mkdir "$MNT_a/locks" "$MNT_a/locks/held@eph"
qfs_stop a
check "the mount is gone" sh -c "! grep -q ' $MNT_a fuse' /proc/mounts"
check "the daemon logged the unmount" grep -q "unmounted $MNT_a" "$LOG_a"
qfs_start a
check "its ephemeral is gone right after the restart" test ! -e "$MNT_a/locks/held"

echo "== kill -9: stale mount cleaned up, @eph locks expire after the session timeout"
mkdir "$MNT_a/locks/l1@eph" "$MNT_a/locks/l2@eph"
qfs_kill9 a
check "a killed daemon leaves a stale mount (ENOTCONN)" \
  test "$(msg_of stat "$MNT_a")" = "Transport endpoint is not connected"
t0=$(date +%s%N)
qfs_start a
check "the next start detects and detaches the stale mount" grep -q "stale FUSE mount" "$LOG_a"
check "  and mounts again" grep -q " $MNT_a fuse.quorumfs" /proc/mounts
check "the dead mount's locks are still held right after the restart" test -d "$MNT_a/locks/l1"
# A shell waits for the lock with the recipe; it gets it once the old session expires (2 s).
timeout 20 "$R/lock" "$MNT_a/locks" l1 sh -c "date +%s%N >'$QFS_TMP/got'"
t1=$(cat "$QFS_TMP/got" 2>/dev/null || echo 0)
check "a waiting shell acquires the lock after the session timeout" test "$t1" -gt 0
echo "     acquired $(((t1 - t0) / 1000000)) ms after the restart began (mount.sessionTimeoutMs=2000)"
check "a network client sees the other lock expire too" wait_for 5 sh -c "! $ZK $PORT_a exists /locks/l2"
qfs_stop a

echo "== no durable writes (log on a disk that stalls): ETIMEDOUT, reads work, SIGINT -> EINTR"
mkdir -p "$QFS_TMP/disk"
"$MEMFS" "$QFS_TMP/disk" --hold-fsync "$QFS_TMP/hold" >"$QFS_TMP/memfs.log" 2>&1 &
memfs_pid=$!
QFS_BG+=("$memfs_pid")
QFS_MOUNTS+=("$QFS_TMP/disk")
wait_for 10 grep -q " $QFS_TMP/disk fuse.memfs" /proc/mounts || { fail "memfs did not mount"; finish; exit 1; }
qfs_start b "dataLogDir=$QFS_TMP/disk" "preAllocSize=64"
M=$MNT_b
echo before >"$M/f"
mkdir "$M/d"
touch "$QFS_TMP/hold"
t0=$(date +%s%N)
msg=$(msg_of mkdir "$M/blocked")
t1=$(date +%s%N)
check "a write fails with ETIMEDOUT (got '$msg')" test "$msg" = "Connection timed out"
ms=$(((t1 - t0) / 1000000))
check "  after the bounded wait (mount.writeTimeoutMs=3000; took $ms ms)" test "$ms" -ge 2900 -a "$ms" -lt 6000
check "  with a log line that says why" grep -q "not answered within mount.writeTimeoutMs" "$LOG_b"
check "reads still work: cat" test "$(timeout 2 cat "$M/f")" = before
check "reads still work: ls" test "$(timeout 2 ls "$M" | tr '\n' ' ')" = "d f zookeeper "
check_sigint_mkdir "$M"
rm -f "$QFS_TMP/hold"
check "writes work again once the disk answers" wait_for 10 mkdir "$M/after"
check "  and the data is all there" test "$(cat "$M/f")" = before
qfs_stop b
kill -TERM "$memfs_pid"
wait "$memfs_pid" 2>/dev/null

finish
