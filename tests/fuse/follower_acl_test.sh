#!/usr/bin/env bash
# A mount on a FOLLOWER is checked with its caller's identity (docs/fuse.md, "Identities and
# ACLs on the mount"): a 3-member ensemble with a mount on every member and two real Unix users.
# kazoo on the leader makes /facl (a file) and /facl.d (a directory) that unix:ALICE may change
# and anyone may read; through a follower's mount alice writes and creates, bob gets EACCES, and
# kazoo on the leader reads back alice's writes and nothing of bob's.
#   QUORUMFSD=.../quorumfsd follower_acl_test.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
. "$here/ens_lib.sh"

tag=$$
ALICE=qfsfa$tag BOB=qfsfb$tag
users_cleanup() {
  userdel "$ALICE" 2>/dev/null
  userdel "$BOB" 2>/dev/null
  ens_cleanup
  qfs_cleanup
}
trap users_cleanup EXIT
useradd -M -N -g users -s /bin/sh "$ALICE" || exit 1
useradd -M -N -g users -s /bin/sh "$BOB" || exit 1
AUID=$(id -u "$ALICE")
as() { local u=$1; shift; setpriv --reuid="$u" --regid=users --init-groups "$@"; }

# outcome DESC WANT CMD...: WANT "ok" (exit 0) or "EACCES" (non-zero, "Permission denied").
outcome() {
  local desc=$1 want=$2 out rc; shift 2
  CHECKS=$((CHECKS + 1))
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$want" = ok ] && [ $rc -eq 0 ]; then echo "ok   $desc"; return; fi
  if [ "$want" = EACCES ] && [ $rc -ne 0 ] && [[ "$out" == *"Permission denied"* ]]; then
    echo "ok   $desc"
    return
  fi
  fail "$desc: want $want, got rc=$rc ($out)"
}

echo "== a 3-member ensemble, a mount on every member"
ens_start_mounted --set "mount.sessionTimeoutMs=2000" --set "mount.writeTimeoutMs=3000"
chmod 755 "$QFS_TMP"  # the users must reach the mount points
L=$(ens leader)
F=""
for i in 1 2 3; do
  [ "$(ens status | awk -v k="$i" '$1==k{ print $2 }')" = follower ] && { F=$i; break; }
done
[ -n "$F" ] || { fail "no follower found"; ens status; finish; exit 1; }
echo "     leader: member $L; the users write through member $F's mount"
LP=$(port "$L")

"$PY" - "$LP" "$AUID" <<'PYEOF' || fail "kazoo on the leader could not make the nodes"
import sys
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, Permissions as P
z = KazooClient("127.0.0.1:%s" % sys.argv[1]); z.start()
alice = Id("unix", sys.argv[2])
acl = [ACL(P.ALL, alice), ACL(P.READ, Id("world", "anyone"))]
z.create("/facl", b"before\n", acl=acl)
z.create("/facl.d", acl=acl)
z.sync("/")
z.stop()
PYEOF
FM=$(M "$F")
check "the nodes reached the follower's mount" wait_for 10 test -e "$FM/facl.d"

outcome "bob cannot write /facl through the follower" EACCES as "$BOB" sh -c "echo by-bob > '$FM/facl'"
outcome "  nor create in /facl.d" EACCES as "$BOB" touch "$FM/facl.d/bob"
outcome "alice writes /facl through the follower" ok as "$ALICE" sh -c "echo by-alice > '$FM/facl'"
outcome "  and creates /facl.d/alice" ok as "$ALICE" sh -c "echo new > '$FM/facl.d/alice'"
outcome "bob cannot remove /facl.d/alice" EACCES as "$BOB" rm -f "$FM/facl.d/alice"
outcome "root (unix:0 + world) cannot write it either" EACCES sh -c "echo by-root > '$FM/facl'"

# On the leader: alice's writes are there, bob's and root's are not; the ACL is untouched.
"$PY" - "$LP" >"$QFS_TMP/leader.out" 2>&1 <<'PYEOF'
import sys
from kazoo.client import KazooClient
z = KazooClient("127.0.0.1:%s" % sys.argv[1]); z.start()
z.sync("/")
print("data", z.get("/facl")[0].decode().strip())
print("child", z.get("/facl.d/alice")[0].decode().strip() if z.exists("/facl.d/alice") else "-")
print("children", ",".join(sorted(z.get_children("/facl.d"))))
print("acl", ",".join("%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in z.get_acls("/facl")[0]))
z.stop()
PYEOF
check "kazoo on the leader reads alice's write to /facl" grep -qx "data by-alice" "$QFS_TMP/leader.out"
check "  and her new /facl.d/alice" grep -qx "child new" "$QFS_TMP/leader.out"
check "  and no child of bob's" grep -qx "children alice" "$QFS_TMP/leader.out"
check "  and the ACL as made" grep -qx "acl unix:$AUID:31,world:anyone:1" "$QFS_TMP/leader.out"
grep -q "^data by-alice$" "$QFS_TMP/leader.out" || cat "$QFS_TMP/leader.out"

finish
