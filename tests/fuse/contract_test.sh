#!/usr/bin/env bash
# The contract of the mounted tree (docs/fuse.md), point by point, through a real mount with
# shell tools; a kazoo client is the network's view of the same tree.
#   QUORUMFSD=build/.../quorumfsd bash tests/fuse/contract_test.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
export HERE=$here
ZK="$PY $here/zk.py"

qfs_start a snapCount=2
M=$MNT_a
P=$PORT_a
zk() { $ZK "$P" "$@"; }
cd "$QFS_TMP"

echo "== nodes, files and directories"
check "mkdir makes a directory node" mkdir "$M/app"
check "  seen by a network client" zk exists /app
echo hello >"$M/app/config"
check "echo > creates a file node" test -f "$M/app/config"
check "  its content is the node's data" test "$(zk get /app/config)" = hello
check "cat reads it" test "$(cat "$M/app/config")" = hello
touch "$M/app/empty"
check "touch creates an (empty) file node" test -f "$M/app/empty"
mkdir "$M/app/emptydir"
zk create /app/netfile "some data" >/dev/null
zk create /app/netdir >/dev/null
check "a network client's node with data is a file" test -f "$M/app/netfile"
check "a network client's node without data is a directory" test -d "$M/app/netdir"
exec 7<"$M/app/netfile"
zk create /app/netfile/child x >/dev/null
check "a file node that gains a child becomes a directory" wait_for 2 test -d "$M/app/netfile"
check "  its data is then its .data" test "$(cat "$M/app/netfile/.data")" = "some data"
check "  an already open handle keeps reading the data" test "$(cat <&7)" = "some data"
exec 7<&-
check "ls hides .data" sh -c "! ls '$M/app/netfile' | grep -q '^.data$'"
check "ls -a shows .data" sh -c "ls -a '$M/app/netfile' | grep -q '^.data$'"
echo "dir data" >"$M/app/emptydir/.data"
check "writing .data sets a directory's data" test "$(zk get /app/emptydir)" = "dir data"
check "  and it stays a directory" test -d "$M/app/emptydir"
rm "$M/app/emptydir/.data"
check "rm .data empties it" test "$(zk stat /app/emptydir dataLength)" = 0
check "  and it is then absent" test ! -e "$M/app/emptydir/.data"

echo "== stat and extended attributes"
check "size is the data length" test "$(stat -c %s "$M/app/config")" = 6
mt=$(zk stat /app/config mtime)
check "mtime is the node's mtime" test "$(stat -c %Y "$M/app/config")" = "$((mt / 1000))"
ino1=$(stat -c %i "$M/app/config")
echo again >"$M/app/config"
check "the inode number is stable across updates" test "$(stat -c %i "$M/app/config")" = "$ino1"
rm "$M/app/config"
echo hello >"$M/app/config"
check "a re-created node gets a new inode number" test "$(stat -c %i "$M/app/config")" != "$ino1"
attrs=$(getfattr -d -m - "$M/app/config" 2>/dev/null)
for f in czxid mzxid pzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren acl; do
  check "getfattr shows user.zk.$f" grep -q "^user.zk.$f=" <<<"$attrs"
done
check "user.zk.version equals the Stat's" \
  test "$(getfattr --absolute-names --only-values -n user.zk.version "$M/app/config")" = "$(zk stat /app/config version)"
check "user.zk.czxid equals the Stat's" \
  test "$(( $(getfattr --absolute-names --only-values -n user.zk.czxid "$M/app/config") ))" = "$(zk stat /app/config czxid)"
check "user.zk.numChildren" test "$(getfattr --absolute-names --only-values -n user.zk.numChildren "$M/app")" = "$(zk stat /app numChildren)"
check "user.zk.acl" test "$(getfattr --absolute-names --only-values -n user.zk.acl "$M/app/config")" = "world:anyone:cdrwa"
check "setfattr user.zk.acl sets the ACL" setfattr -n user.zk.acl -v "world:anyone:cdrwa" "$M/app/config"
check "  and bumps aversion" test "$(zk stat /app/config aversion)" = 1
check "other user.zk.* are read-only (EOPNOTSUPP)" \
  test "$(msg_of setfattr -n user.zk.version -v 5 "$M/app/config")" = "Operation not supported"

echo "== creating"
check "mkdir of an existing name is EEXIST" test "$(msg_of mkdir "$M/app")" = "File exists"
zk create /app/netlock >/dev/null
check "mkdir of a name created elsewhere is EEXIST" test "$(msg_of mkdir "$M/app/netlock")" = "File exists"
check "O_EXCL (set -C) on an existing file is EEXIST" sh -c "! (set -C; echo x > '$M/app/config') 2>/dev/null"
mkdir "$M/app/lock@eph"
check "mkdir NAME@eph makes an ephemeral node NAME" test -d "$M/app/lock"
check "  owned by the mount's session" test "$(zk stat /app/lock ephemeralOwner)" != 0
check "  a second mkdir NAME@eph is EEXIST" test "$(msg_of mkdir "$M/app/lock@eph")" = "File exists"
check "  ephemerals cannot have children (EOPNOTSUPP)" \
  test "$(msg_of mkdir "$M/app/lock/child")" = "Operation not supported"
check "  rmdir NAME@eph releases it" rmdir "$M/app/lock@eph"
check "  gone" sh -c "! $ZK $P exists /app/lock"
mkdir "$M/app/q"
echo one >"$M/app/q/job-@seq"
echo two >"$M/app/q/job-@seq"
check "@seq appends ZooKeeper's 10-digit counter" \
  test "$(ls "$M/app/q" | tr '\n' ' ')" = "job-0000000000 job-0000000001 "
check "  with the full content" test "$(cat "$M/app/q/job-0000000001")" = two
mkdir "$M/app/q/l-@seq@eph" "$M/app/q/m-@eph@seq"
check "@seq@eph in either order" sh -c "ls '$M/app/q' | grep -q '^l-0000000002$' && ls '$M/app/q' | grep -q '^m-0000000003$'"
check "  both ephemeral" sh -c "[ \$($ZK $P stat /app/q/l-0000000002 ephemeralOwner) != 0 ] && [ \$($ZK $P stat /app/q/m-0000000003 ephemeralOwner) != 0 ]"
zk create "/app/real@eph" "exact" >/dev/null
check "a node really named x@eph is found by its exact name" test "$(cat "$M/app/real@eph")" = exact
touch "$M/app/eph-file@eph"
check "touch NAME@eph makes an ephemeral file" sh -c "[ -f '$M/app/eph-file' ] && [ \$($ZK $P stat /app/eph-file ephemeralOwner) != 0 ]"
# Protected names: a unique token in the prefix finds the created sequential node.
tok="$(hostname)-$$"
echo me >"$M/app/q/$tok-@seq"
mine=$(ls "$M/app/q" | grep "^$tok-")
check "the protected-name recipe finds the sequential node it created" test "$(cat "$M/app/q/$mine")" = me

echo "== atomic publish"
head -c 600000 /dev/urandom >"$QFS_TMP/big"
$PY - "$P" "$QFS_TMP/big" >"$QFS_TMP/publish.out" 2>&1 <<'PYEOF' &
import sys, time
from kazoo.client import KazooClient
z = KazooClient("127.0.0.1:%s" % sys.argv[1]); z.start()
want = open(sys.argv[2], "rb").read()
seen = set(); deadline = time.time() + 20
while time.time() < deadline:
    try:
        d, _ = z.get("/app/pub")
    except Exception:
        continue
    seen.add(len(d))
    if d == want:
        break
    print("BAD: read %d bytes" % len(d)); sys.exit(1)
print("sizes seen: %s" % sorted(seen)); sys.exit(0 if want in [d] else 1)
PYEOF
reader=$!
QFS_BG+=("$reader")
sleep 0.3
cp "$QFS_TMP/big" "$M/app/pub"
wait "$reader"
rc=$?
check "a file written in many writes appears in one step, full (cp, 600 kB)" test $rc -eq 0
cat "$QFS_TMP/publish.out"
check "  its content is exact" cmp -s "$QFS_TMP/big" "$M/app/pub"

echo "== writing"
printf 'v1' >"$M/app/w"
$PY - "$M/app/w" "$P" <<'PYEOF'
import errno, os, subprocess, sys
path, port = sys.argv[1], sys.argv[2]
zk = [sys.executable, os.path.join(os.environ["HERE"], "zk.py"), port]
fails = 0
def expect(desc, cond):
    global fails
    print(("ok   " if cond else "FAIL: ") + desc); fails += 0 if cond else 1
# read-modify-write: conditional on the version seen at open
fd = os.open(path, os.O_RDWR)
subprocess.check_call(zk + ["set", "/app/w", "other"])
os.write(fd, b"mine")
try:
    os.close(fd); expect("conditional commit after a concurrent change fails", False)
except OSError as e:
    expect("conditional commit after a concurrent change fails with ESTALE", e.errno == errno.ESTALE)
expect("  nothing applied", subprocess.check_output(zk + ["get", "/app/w"]) == b"other")
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
subprocess.check_call(zk + ["set", "/app/w", "other2"])
os.write(fd, b"+")
os.close(fd)
# an append is never conditional (docs/fuse.md, "Appends"): it goes after the concurrent change
expect(">> after a concurrent change appends to it",
       subprocess.check_output(zk + ["get", "/app/w"]) == b"other2+")
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
subprocess.check_call(zk + ["set", "/app/w", "other3"])
os.write(fd, b"replaced")
os.close(fd)
expect("O_TRUNC commits unconditionally", subprocess.check_output(zk + ["get", "/app/w"]) == b"replaced")
fd = os.open(path, os.O_RDWR)
os.write(fd, b"ab"); os.fsync(fd)
expect("fsync commits", subprocess.check_output(zk + ["get", "/app/w"]) == b"abplaced")
os.lseek(fd, 4, os.SEEK_SET); os.write(fd, b"XY"); os.close(fd)
expect("seek and write, then close", subprocess.check_output(zk + ["get", "/app/w"]) == b"abplXYed")
sys.exit(1 if fails else 0)
PYEOF
check "the conditional-commit checks above" test $? -eq 0
echo "x" >>"$M/app/w"
check ">> appends" test "$(cat "$M/app/w")" = "abplXYedx"
truncate -s 3 "$M/app/w"
check "truncate shrinks" test "$(cat "$M/app/w")" = "abp"
truncate -s 5 "$M/app/w"
check "truncate extends with NUL bytes" test "$(od -An -c "$M/app/w" | tr -s ' ')" = " a b p \0 \0"
printf 'a\0b\0\377' >"$QFS_TMP/bin"
cp "$QFS_TMP/bin" "$M/app/bin"
check "binary data (NUL bytes) round-trips" cmp -s "$QFS_TMP/bin" "$M/app/bin"
printf 'XY' | dd of="$M/app/bin" bs=1 seek=1 conv=notrunc status=none
check "dd seek conv=notrunc patches in place" test "$(od -An -c "$M/app/bin" | tr -s ' ')" = " a X Y \0 377"
head -c 1048577 /dev/zero >"$QFS_TMP/toobig"
check "data above 1 MiB is EFBIG" test "$(msg_of cp "$QFS_TMP/toobig" "$M/app/toobig")" = "File too large"
check "  and nothing is committed" sh -c "! $ZK $P exists /app/toobig"
check "truncate above the limit is EFBIG" test "$(msg_of truncate -s 2M "$M/app/w")" = "File too large"
head -c 1048576 /dev/zero >"$QFS_TMP/max"
check "exactly 1 MiB is accepted" cp "$QFS_TMP/max" "$M/app/max"

echo "== deleting and renaming"
check "rm deletes a file node" rm "$M/app/empty"
check "  gone" sh -c "! $ZK $P exists /app/empty"
mkdir -p "$M/app/tree/a/b"
echo f >"$M/app/tree/a/b/f"
check "rmdir of a non-empty directory is ENOTEMPTY" test "$(msg_of rmdir "$M/app/tree")" = "Directory not empty"
check "rm -r deletes a subtree" rm -r "$M/app/tree"
check "  gone" sh -c "! $ZK $P exists /app/tree"
echo src >"$M/app/m1"
czx=$(zk stat /app/m1 czxid)
check "mv of a file" mv "$M/app/m1" "$M/app/m2"
check "  target has the data" test "$(zk get /app/m2)" = src
check "  source is gone" sh -c "! $ZK $P exists /app/m1"
echo new >"$M/app/m3"
check "mv over an existing file replaces it" mv "$M/app/m3" "$M/app/m2"
check "  in one step (one zxid)" test "$(zk stat /app/m2 czxid)" = "$(zk stat /app/m2 mzxid)"
check "  with the new data" test "$(cat "$M/app/m2")" = new
[ "$czx" != "$(zk stat /app/m2 czxid)" ] || fail "mv made no new node"
mkdir -p "$M/app/dir1/sub"
echo d1 >"$M/app/dir1/.data"
echo f >"$M/app/dir1/sub/f"
check "mv of a directory (EXDEV: mv copies, then removes)" mv "$M/app/dir1" "$M/app/dir2"
check "  the subtree and the directory's data moved" \
  sh -c "[ \"\$(cat '$M/app/dir2/sub/f')\" = f ] && [ \"\$(cat '$M/app/dir2/.data')\" = d1 ] && [ ! -e '$M/app/dir1' ]"
check "ln (hard link) is EPERM" test "$(msg_of ln "$M/app/m2" "$M/app/hl")" = "Operation not permitted"
check "ln -s is EPERM" test "$(msg_of ln -s m2 "$M/app/sl")" = "Operation not permitted"
check "chmod to another mode is EPERM" test "$(msg_of chmod 600 "$M/app/m2")" = "Operation not permitted"
check "chmod to the same mode is a no-op" chmod 644 "$M/app/m2"
check "chown to another owner is EPERM" test "$(msg_of chown nobody "$M/app/m2")" = "Operation not permitted"
check "mkfifo is EPERM" test "$(msg_of mkfifo "$M/app/fifo")" = "Operation not permitted"

echo "== tools: find, cp -r, tar"
mkdir -p "$QFS_TMP/src/a/b"
echo 1 >"$QFS_TMP/src/a/one"
echo 2 >"$QFS_TMP/src/a/b/two"
printf '' >"$QFS_TMP/src/empty"
check "cp -r into the mount" cp -r "$QFS_TMP/src" "$M/app/copy"
check "  same tree" diff -r "$QFS_TMP/src" "$M/app/copy"
check "find lists it" test "$(cd "$M/app/copy" && find . | sort | tr '\n' ' ')" = ". ./a ./a/b ./a/b/two ./a/one ./empty "
check "tar from the mount" tar -C "$M/app" -cf "$QFS_TMP/t.tar" copy
mkdir "$M/app/untar"
check "tar into the mount" tar -C "$M/app/untar" -xf "$QFS_TMP/t.tar"
check "  same tree" diff -r "$QFS_TMP/src" "$M/app/untar/copy"
check "cp -r out of the mount" cp -r "$M/app/copy" "$QFS_TMP/back"
check "  same tree" diff -r "$QFS_TMP/src" "$QFS_TMP/back"

echo "== names and errors"
check "ENOENT for a missing node" test "$(msg_of cat "$M/app/nope")" = "No such file or directory"
check "writes under /zookeeper are EPERM" test "$(msg_of mkdir "$M/zookeeper/x")" = "Operation not permitted"
check "a name ZooKeeper refuses is EINVAL" test "$(msg_of mkdir "$M/app/bad$(printf '\001')name")" = "Invalid argument"
check "a name over 255 bytes is ENAMETOOLONG" test "$(msg_of mkdir "$M/app/$(printf 'n%.0s' $(seq 300))")" = "File name too long"

echo "== freshness"
t0=$(date +%s%N)
zk set /app/m2 fresh
ok=""
for _ in $(seq 1000); do [ "$(cat "$M/app/m2")" = fresh ] && { ok=1; break; }; sleep 0.001; done
t1=$(date +%s%N)
check "a change by a network client is visible through the mount" test -n "$ok"
echo "     (visible $(((t1 - t0) / 1000000)) ms after the client started its set, incl. starting the kazoo client process)"
cat "$M/app/m2" >/dev/null
zk set /app/m2 synced
check "sync DIR (fsync on a directory) is a barrier: the next read is fresh" \
  sh -c "sync '$M/app' && [ \"\$(cat '$M/app/m2')\" = synced ]"

echo "== kinds survive a restart (and a snapshot)"
touch "$M/app/kind-file"
mkdir "$M/app/kind-dir"
qfs_stop a
check "clean unmount on SIGTERM" sh -c "! grep -q ' $M fuse' /proc/mounts"
qfs_start a
check "an empty file made by touch is still a file" test -f "$M/app/kind-file"
check "an empty directory made by mkdir is still a directory" test -d "$M/app/kind-dir"
check "a directory with data is still a directory" test -d "$M/app/emptydir"
check "the data is still there" test "$(cat "$M/app/m2")" = synced

finish
