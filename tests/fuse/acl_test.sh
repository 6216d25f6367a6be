#!/bin/bash
# ZooKeeper's ACLs on the mount, per local user (docs/fuse.md, "Identities and ACLs on the
# mount"), run as two real Unix users created here. Member A: a plain mount. Member D: a mount
# with mount.auth=digest:carol:pw and mount.rootIsSuper=true. For each scheme (world, ip, unix
# uid, unix group, digest) and each permission (r w c d a) a node grants only that permission;
# cat, echo >, touch/mkdir, rm, setfattr user.zk.acl, ls, getfattr and test -r/-w are allowed
# or refused (EACCES) as the ACL says, and the digest hash is never shown without ADMIN.
# kazoo on the same member sees the same.
# shellcheck source=tests/fuse/lib.sh
source "$(dirname "$0")/lib.sh"

# Two users and a group only alice is in; removed on exit (before lib.sh's cleanup runs).
tag=$$
ALICE=qfsa$tag BOB=qfsb$tag GRP=qfsg$tag
users_cleanup() {
  userdel "$ALICE" 2>/dev/null
  userdel "$BOB" 2>/dev/null
  groupdel "$GRP" 2>/dev/null
  qfs_cleanup
}
trap users_cleanup EXIT
groupadd "$GRP" || exit 1
useradd -M -N -g users -G "$GRP" -s /bin/sh "$ALICE" || exit 1
useradd -M -N -g users -s /bin/sh "$BOB" || exit 1
AUID=$(id -u "$ALICE")
GGID=$(getent group "$GRP" | cut -d: -f3)
as() { local u=$1; shift; setpriv --reuid="$u" --regid=users --init-groups "$@"; }

qfs_start A
qfs_start D "mount.auth=digest:carol:pw" "mount.rootIsSuper=true"
chmod 755 "$QFS_TMP" "$QFS_TMP/A" "$QFS_TMP/D"  # the users must reach the mount points

CAROL=$("$PY" -c 'import base64,hashlib;print("carol:"+base64.b64encode(hashlib.sha1(b"carol:pw").digest()).decode())')
declare -A SCHEME_ID=([world]="world:anyone" [ip]="ip:127.0.0.1" [uid]="unix:$AUID"
  [gid]="unix:g:$GGID" [digest]="digest:$CAROL")

# Nodes, made by kazoo: /S_P (a directory with f_alice, f_bob) and /S_P.f (a file), both with
# the ACL S:id:P only; /dg: digest:carol:cdrwa + world:anyone:r; /alice-only: digest of another
# user only (the issue's case).
setup() {
  "$PY" - "$1" "$CAROL" "${SCHEME_ID[@]}" <<'PYEOF'
import sys
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, Permissions as P
z = KazooClient("127.0.0.1:%s" % sys.argv[1]); z.start()
carol = sys.argv[2]
letters = {"r": P.READ, "w": P.WRITE, "c": P.CREATE, "d": P.DELETE, "a": P.ADMIN}
for sid in sys.argv[3:]:
    scheme, ident = sid.split(":", 1)
    name = {"world": "world", "ip": "ip", "digest": "digest"}.get(scheme)
    if scheme == "unix":
        name = "gid" if ident.startswith("g:") else "uid"
    for l, bit in letters.items():
        acl = [ACL(bit, Id(scheme, ident))]
        z.create("/%s_%s" % (name, l))
        z.create("/%s_%s/f_alice" % (name, l), b"x")
        z.create("/%s_%s/f_bob" % (name, l), b"x")
        z.create("/%s_%s.f" % (name, l), b"secret\n")
        z.set_acls("/%s_%s" % (name, l), acl)
        z.set_acls("/%s_%s.f" % (name, l), acl)
z.create("/dg", b"dg\n", acl=[ACL(P.ALL, Id("digest", carol)), ACL(P.READ, Id("world", "anyone"))])
z.create("/alice-only", b"top secret\n", acl=[ACL(P.ALL, Id("digest", "alice:QKxkC9vQzQ2SNO4J9FAyIWnyb3k="))])
z.stop()
PYEOF
}
setup "$PORT_A" || exit 1
setup "$PORT_D" || exit 1

# outcome DESC WANT CMD...: WANT "ok" (exit 0) or "EACCES" (non-zero, "Permission denied").
outcome() {
  local desc=$1 want=$2 out rc; shift 2
  CHECKS=$((CHECKS + 1))
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$want" = ok ] && [ $rc -eq 0 ]; then return; fi
  if [ "$want" = EACCES ] && [ $rc -ne 0 ] && [[ "$out" == *"Permission denied"* ]]; then return; fi
  fail "$desc: want $want, got rc=$rc ($out)"
}

# matrix MOUNT SCHEME HOLDERS...: every operation for every permission, as alice and bob.
matrix() {
  local m=$1 s=$2 u p granted want; shift 2
  local sid=${SCHEME_ID[$s]}
  for u in "$ALICE" "$BOB"; do
    granted=""
    for h in "$@"; do [ "$h" = "$u" ] && granted=1; done
    for p in r w c d a; do
      local short=alice
      [ "$u" = "$BOB" ] && short=bob
      local n=$m/${s}_$p f=$m/${s}_$p.f who="$s:$p as $short"
      yes_if() { if [ -n "$granted" ] && [[ "$1" == *"$p"* ]]; then echo ok; else echo EACCES; fi; }
      outcome "$who: cat" "$(yes_if r)" as "$u" cat "$f"
      outcome "$who: ls" "$(yes_if r)" as "$u" ls "$n"
      outcome "$who: echo x > f (builtin)" "$(yes_if w)" as "$u" sh -c "echo x > '$f'"
      outcome "$who: touch new" "$(yes_if c)" as "$u" touch "$n/new-$u"
      outcome "$who: mkdir" "$(yes_if c)" as "$u" mkdir "$n/dir-$u"
      outcome "$who: rm" "$(yes_if d)" as "$u" rm "$n/f_$short" </dev/null
      outcome "$who: setfattr user.zk.acl" "$(yes_if a)" as "$u" setfattr -n user.zk.acl -v "$sid:$p" "$f"
      outcome "$who: getfattr user.zk.acl" "$(yes_if ra)" as "$u" getfattr -n user.zk.acl "$f"
      outcome "$who: getfattr user.zk.version (needs nothing)" ok as "$u" getfattr -n user.zk.version "$f"
      outcome "$who: stat (needs nothing)" ok as "$u" stat "$f"
      outcome "$who: test -r" "$(yes_if r)" as "$u" sh -c "[ -r '$f' ] || { echo 'Permission denied' >&2; exit 1; }"
      outcome "$who: test -w" "$(yes_if w)" as "$u" sh -c "[ -w '$f' ] || { echo 'Permission denied' >&2; exit 1; }"
    done
  done
}

MA=$MNT_A MD=$MNT_D
c0=$CHECKS f0=$FAILS
echo "== member A (no mount.auth)"
matrix "$MA" world "$ALICE" "$BOB"
matrix "$MA" ip "$ALICE" "$BOB"
matrix "$MA" uid "$ALICE"
matrix "$MA" gid "$ALICE"
matrix "$MA" digest
echo "== member D (mount.auth=digest:carol:pw: every local user is carol too)"
matrix "$MD" digest "$ALICE" "$BOB"
echo "ok   the matrix: $((CHECKS - c0)) checks, $((FAILS - f0)) failed"

echo "== digest hashes"
check "a reader without ADMIN sees digest:carol:x" \
  sh -c "[ \"\$(setpriv --reuid=$BOB --regid=users --init-groups getfattr --only-values -n user.zk.acl $MA/dg 2>/dev/null)\" = 'digest:carol:x:cdrwa,world:anyone:r' ]"
check "  root on A (not super by default) sees the same" \
  sh -c "[ \"\$(getfattr --only-values -n user.zk.acl $MA/dg 2>/dev/null)\" = 'digest:carol:x:cdrwa,world:anyone:r' ]"
check "  with mount.auth=carol (ADMIN) the hash is shown" \
  sh -c "[ \"\$(setpriv --reuid=$BOB --regid=users --init-groups getfattr --only-values -n user.zk.acl $MD/dg 2>/dev/null)\" = 'digest:$CAROL:cdrwa,world:anyone:r' ]"
outcome "a digest-only node (the issue's case): cat as root refused" EACCES cat "$MA/alice-only"
outcome "  getfattr user.zk.acl refused (no READ, no ADMIN)" EACCES getfattr -n user.zk.acl "$MA/alice-only"
outcome "  ls of its parent still lists it (as exists)" ok ls "$MA"

echo "== root"
outcome "root on A is unix:0 + world: refused a unix:alice node" EACCES cat "$MA/uid_r.f"
outcome "root on D (mount.rootIsSuper=true) reads it" ok cat "$MD/uid_r.f"

echo "== the network's view of the same nodes (kazoo on 127.0.0.1: ip + world)"
"$PY" - "$PORT_A" "$CAROL" >"$QFS_TMP/kz.out" 2>&1 <<'PYEOF'
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, AuthFailedError
z = KazooClient("127.0.0.1:%s" % sys.argv[1]); z.start()
for s in ["world", "ip", "uid", "gid", "digest"]:
    for p in "rwcda":
        try:
            z.get("/%s_%s.f" % (s, p)); r = "ok"
        except NoAuthError:
            r = "EACCES"
        print("%s_%s %s" % (s, p, r))
print("acl", ",".join("%s:%s" % (a.id.scheme, a.id.id) for a in z.get_acls("/dg")[0]))
z.stop()
z = KazooClient("127.0.0.1:%s" % sys.argv[1], auth_data=[("digest", "carol:pw")]); z.start()
print("carol-acl", ",".join("%s:%s" % (a.id.scheme, a.id.id) for a in z.get_acls("/dg")[0]))
z.stop()
z = KazooClient("127.0.0.1:%s" % sys.argv[1], auth_data=[("unix", "0")])
try:
    z.start(timeout=5); z.get("/uid_r.f"); print("unix-auth accepted")
except Exception as e:
    print("unix-auth refused", type(e).__name__)
PYEOF
mismatch=0
for s in world ip uid gid digest; do
  for p in r w c d a; do
    if cat "$MA/${s}_$p.f" >/dev/null 2>&1; then mine=ok; else mine=EACCES; fi
    grep -qx "${s}_$p $mine" "$QFS_TMP/kz.out" || { mismatch=1; echo "     ${s}_$p: root on the mount $mine, kazoo $(grep "^${s}_$p " "$QFS_TMP/kz.out")"; }
  done
done
check "root's cat on A and kazoo's get agree for all 25 nodes" test $mismatch -eq 0
check "kazoo without auth sees digest:carol:x (as getfattr)" grep -qx "acl digest:carol:x,world:anyone" "$QFS_TMP/kz.out"
check "kazoo with digest carol sees the hash (as mount.auth)" grep -qx "carol-acl digest:$CAROL,world:anyone" "$QFS_TMP/kz.out"
check "a network client cannot claim a unix identity (addauth unix: AUTH_FAILED)" grep -q "unix-auth refused" "$QFS_TMP/kz.out"
grep -q "unix-auth refused" "$QFS_TMP/kz.out" || cat "$QFS_TMP/kz.out"

echo "== setting unix ACLs: setfattr and zkCli"
echo hello >"$MA/shared"
check "invalid unix ids are refused (unix:01, unix:alice, unix:g:x)" sh -c "! setfattr -n user.zk.acl -v 'unix:01:r' $MA/shared 2>/dev/null && ! setfattr -n user.zk.acl -v 'unix:alice:r' $MA/shared 2>/dev/null && ! setfattr -n user.zk.acl -v 'unix:g:x:r' $MA/shared 2>/dev/null"
check "setfattr -v 'unix:ALICE:rw' (root holds ADMIN through world)" setfattr -n user.zk.acl -v "unix:$AUID:rw,unix:g:$GGID:r" "$MA/shared"
outcome "  alice reads it" ok as "$ALICE" cat "$MA/shared"
outcome "  alice writes it (builtin echo)" ok as "$ALICE" sh -c "echo by-alice > '$MA/shared'"
outcome "  bob cannot read it" EACCES as "$BOB" cat "$MA/shared"
outcome "  root cannot read it any more" EACCES cat "$MA/shared"
ZKCLI=/usr/share/zookeeper/bin/zkCli.sh
if [ -x "$ZKCLI" ]; then
  echo x >"$MA/byzk"
  timeout 60 "$ZKCLI" -server "127.0.0.1:$PORT_A" setAcl /byzk "unix:$AUID:cdrwa" >"$QFS_TMP/zkcli.out" 2>&1
  check "zkCli setAcl /byzk unix:UID:cdrwa, seen through the mount" \
    sh -c "[ \"\$(setpriv --reuid=$ALICE --regid=users --init-groups getfattr --only-values -n user.zk.acl $MA/byzk 2>/dev/null)\" = 'unix:$AUID:cdrwa' ]"
  outcome "  then alice reads it" ok as "$ALICE" cat "$MA/byzk"
  outcome "  and bob does not" EACCES as "$BOB" cat "$MA/byzk"
else
  fail "zkCli not found at $ZKCLI"
fi

echo "== the page cache does not leak across users"
echo "cached secret" >"$MA/pc"
cat "$MA/pc" >/dev/null  # root fills the page cache
setfattr -n user.zk.acl -v "unix:0:r,world:anyone:a" "$MA/pc"
cat "$MA/pc" >/dev/null
outcome "bob's open of a page-cached file is checked (EACCES)" EACCES as "$BOB" cat "$MA/pc"
ls "$MA/uid_r" >/dev/null 2>&1
outcome "  a directory listed by root is not listed to bob (opendir is checked each time)" EACCES as "$BOB" ls "$MA/uid_r"

finish
