#!/usr/bin/env bash
# quorumfs log-dump and snapshot-dump on a real member's files (docs/tools.md):
#   - the ops and paths kazoo wrote appear in the log dump, the nodes and sessions in the
#     snapshot dump; neither command changes a file;
#   - a torn log tail is reported and exits 0; a flipped byte in the middle of a log segment or
#     of a snapshot exits 1 with a message naming the file (and, for the log, the offset).
set -euo pipefail
quorumfsd=$1
quorumfs=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/qfs-dump-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/notify_lib.sh"  # notify_listen

port=$(/usr/bin/python3 "$here/../clients/ports.py")
cat > "$dir/zoo.cfg" <<CFG
dataDir=$dir/data
dataLogDir=$dir/log
clientPort=$port
snapCount=10
autopurge.snapRetainCount=100
CFG

# The daemon's sd_notify readiness (Type=notify in the unit, docs/install.md).
notify_listen "$dir/notify" "$dir/notify.out"
NOTIFY_SOCKET="$dir/notify" "$quorumfsd" "$dir/zoo.cfg" 2>"$dir/stderr" &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do
  grep -q "serving on" "$dir/stderr" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr"; fail "quorumfsd did not start"; }
  sleep 0.1
done
grep -q "serving on" "$dir/stderr" || fail "quorumfsd did not serve in 10 s"
timeout 20 tail --pid="$notify_pid" -f /dev/null || fail "no READY=1 from quorumfsd"
grep -qx "READY=1" "$dir/notify.out" || fail "notify: $(cat "$dir/notify.out")"

# Writes of every kind through kazoo. The first session stays open (its ephemeral is in the
# snapshots); the second closes with an ephemeral, so the log has a closeSession that deletes it.
timeout 60 /usr/bin/python3 - "$port" > "$dir/session" <<'PY'
import os, sys
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
port = sys.argv[1]
zk = KazooClient(hosts="127.0.0.1:" + port, timeout=30)
zk.start(timeout=15)
zk.create("/dump", b"")
zk.create("/dump/a", b"hello")
zk.create("/dump/seq-", b"s", sequence=True)
zk.create("/dump/eph", b"e", ephemeral=True)
zk.set("/dump/a", b"world!")
zk.set_acls("/dump/a", [make_digest_acl("u", "p", all=True)])
t = zk.transaction()
t.create("/dump/m1", b"xyz")
t.check("/dump", 0)
t.set_data("/dump/seq-0000000001", b"t")
t.delete("/dump/seq-0000000001")
res = t.commit()
assert not any(isinstance(r, Exception) for r in res), res
for i in range(30):
    zk.create("/dump/n%02d" % i, b"v" * i)
zk.delete("/dump/n00")
zk2 = KazooClient(hosts="127.0.0.1:" + port, timeout=30)
zk2.start(timeout=15)
zk2.create("/dump/eph2", b"", ephemeral=True)
zk2.stop()
zk2.close()
print("0x%x" % zk.client_id[0])
sys.stdout.flush()
os._exit(0)  # no closeSession: the session stays in the tree
PY
session=$(cat "$dir/session")
kill -TERM "$pid"
timeout 20 tail --pid="$pid" -f /dev/null || fail "quorumfsd did not stop"
wait "$pid" || fail "quorumfsd exited with an error"

snap=$(ls "$dir/data"/snapshot.* | sort | tail -n 1)
[ -n "$snap" ] || fail "no snapshot with snapCount=10"
sums() { md5sum "$dir/log"/log.* "$dir/data"/snapshot.*; }
sums > "$dir/sums.before"

# 1. The log dump names every op and path.
"$quorumfs" log-dump "$dir/log" > "$dir/log.out" 2>"$dir/log.err" || {
  cat "$dir/log.err"; fail "log-dump exited $? on a clean log"; }
need() {  # need FILE REGEX: a line of FILE matches
  grep -Eq -- "$2" "$1" || { cat "$1"; fail "no line matching '$2' in $(basename "$1")"; }
}
need "$dir/log.out" "^zxid=0x[0-9a-f]+ time=20[0-9-]+T[0-9:.]+Z session=$session cxid=[0-9]+ createSession timeout="
need "$dir/log.out" "session=$session .* create path=/dump/a len=5 mode=PERSISTENT acl=world:anyone:cdrwa"
need "$dir/log.out" " create path=/dump/seq-0000000001 len=1 mode=PERSISTENT_SEQUENTIAL "
need "$dir/log.out" " create path=/dump/eph len=1 mode=EPHEMERAL owner=$session "
need "$dir/log.out" " setData path=/dump/a len=6 version=1$"
need "$dir/log.out" " setACL path=/dump/a acl=digest:u:[^ ]+:cdrwa aversion=1$"
need "$dir/log.out" " multi ops=4 \[create path=/dump/m1 len=3 mode=PERSISTENT [^]]*\] \[check path=/dump version=0\] \[setData path=/dump/seq-0000000001 len=1 version=1\] \[delete path=/dump/seq-0000000001\]$"
need "$dir/log.out" " delete path=/dump/n00$"
need "$dir/log.out" " closeSession ephemerals=1 /dump/eph2$"
need "$dir/log.out" "^# [0-9]+ segments, [0-9]+ records, zxids 0x[0-9a-f]+ to 0x[0-9a-f]+$"
records=$(sed -nE 's/^# [0-9]+ segments, ([0-9]+) records.*/\1/p' "$dir/log.out")
[ "$(grep -c '^zxid=' "$dir/log.out")" -eq "$records" ] || fail "record count line disagrees"
"$quorumfs" log-dump --data "$dir/log" > "$dir/data.out"
need "$dir/data.out" ' setData path=/dump/a len=6 data="world!" version=1$'
one=$(ls "$dir/log"/log.* | sort | head -n 1)
"$quorumfs" log-dump "$one" > "$dir/one.out" || fail "log-dump of one segment failed"
need "$dir/one.out" "^# segment $one: "

# 2. The snapshot dump names the nodes, the ephemeral's owner and the session.
"$quorumfs" snapshot-dump "$snap" > "$dir/snap.out" 2>"$dir/snap.err" || {
  cat "$dir/snap.err"; fail "snapshot-dump failed on a good snapshot"; }
need "$dir/snap.out" "^# snapshot $snap: zxid=0x[0-9a-f]+ created=20[0-9-]+T[0-9:.]+Z records=[0-9]+ nodes=[0-9]+ sessions=[0-9]+ digest=0x[0-9a-f]+ "
need "$dir/snap.out" "^/ czxid=0x0 "
need "$dir/snap.out" "^/dump/a czxid=0x[0-9a-f]+ mzxid=0x[0-9a-f]+ pzxid=0x[0-9a-f]+ ctime=[^ ]+ mtime=[^ ]+ version=1 cversion=0 aversion=1 owner=0x0 children=0 len=6 acl=digest:u:[^ ]+:cdrwa$"
need "$dir/snap.out" "^/dump/eph .* owner=$session children=0 len=1 "
need "$dir/snap.out" "^/dump/m1 .* len=3 "
need "$dir/snap.out" "^session=$session timeout=[0-9]+ ephemerals=1$"
"$quorumfs" snapshot-dump --data "$snap" > "$dir/sdata.out"
need "$dir/sdata.out" '^/dump/a .* len=6 data="world!" '
nodes=$(sed -nE 's/.* nodes=([0-9]+) .*/\1/p' "$dir/snap.out")
[ "$(grep -c '^/' "$dir/snap.out")" -eq "$nodes" ] || fail "node count disagrees with the lines"

sums > "$dir/sums.after"
cmp -s "$dir/sums.before" "$dir/sums.after" || fail "a dump changed a file"

# 3. A torn tail: the last record loses its last bytes. Reported, exit 0, one record fewer.
last=$(ls "$dir/log"/log.* | sort | tail -n 1)
/usr/bin/python3 - "$last" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
end = len(d.rstrip(b'\0'))
d[end - 5:end] = b'\0' * 5
open(path, 'wb').write(d)
PY
md5=$(md5sum < "$last")
"$quorumfs" log-dump "$dir/log" > "$dir/torn.out" 2>"$dir/torn.err" || {
  cat "$dir/torn.err"; fail "log-dump exited non-zero on a torn tail"; }
need "$dir/torn.out" "^# torn tail in $last at offset [0-9]+ \([^)]+\): the daemon truncates"
torn=$(sed -nE 's/^# [0-9]+ segments, ([0-9]+) records.*/\1/p' "$dir/torn.out")
[ "$torn" -eq $((records - 1)) ] || fail "torn tail: $torn records, expected $((records - 1))"
[ "$(md5sum < "$last")" = "$md5" ] || fail "log-dump truncated the torn tail"

# 4. A flipped byte in the middle of the first segment: exit 1, file and offset named.
/usr/bin/python3 - "$one" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
end = len(d.rstrip(b'\0'))
d[end // 2] ^= 0x40
open(path, 'wb').write(d)
PY
rc=0
"$quorumfs" log-dump "$dir/log" > "$dir/bad.out" 2>"$dir/bad.err" || rc=$?
cat "$dir/bad.err"
[ "$rc" -eq 1 ] || fail "log-dump exited $rc on a corrupt log, expected 1"
need "$dir/bad.err" "^quorumfs: log-dump: $one: bad record at offset [0-9]+ "

# 5. A flipped byte in the middle of the snapshot: exit 1, file named.
/usr/bin/python3 - "$snap" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
d[len(d) // 2] ^= 0x01
open(path, 'wb').write(d)
PY
rc=0
"$quorumfs" snapshot-dump "$snap" > /dev/null 2>"$dir/sbad.err" || rc=$?
cat "$dir/sbad.err"
[ "$rc" -eq 1 ] || fail "snapshot-dump exited $rc on a corrupt snapshot, expected 1"
need "$dir/sbad.err" "^quorumfs: snapshot-dump: $snap: invalid snapshot at offset [0-9]+"

# 6. Usage and missing files.
rc=0; "$quorumfs" log-dump 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "log-dump without arguments exited $rc, expected 2"
rc=0; "$quorumfs" snapshot-dump "$dir/nonexistent" 2>"$dir/nf.err" || rc=$?
[ "$rc" -eq 1 ] || fail "snapshot-dump of a missing file exited $rc, expected 1"
need "$dir/nf.err" "nonexistent"
"$quorumfs" help log-dump > "$dir/help.out"
need "$dir/help.out" "^usage: quorumfs log-dump"
echo "dump_test: ok"
