#!/usr/bin/env bash
# The mount of a member in read-only mode (readonlymode.enabled, docs/read-only.md) on a real
# 3-member ensemble: kill -9 the two other members; once the member is read-only its mount
# logs it once, answers reads from the member's tree, and fails shell writes at the call with
# EROFS (echo > file, echo >> file, mkdir, rm, touch, mv, sync DIR), at once rather than after
# mount.writeTimeoutMs; after the two members are back, writes through the mount work again.
#   QUORUMFSD=.../quorumfsd read_only_test.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
. "$here/ens_lib.sh"
WRITE_MS=3000
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
isro() {
  "$PY" -c "import sys; sys.path.insert(0, '$here/../ensemble'); import ensemble as E
print(E.four_letter($(port "$1"), 'isro', 1.0))"
}
ro_lines() { grep -c "read-only: this member has no quorum" "$(log "$1")"; }

echo "== a 3-member ensemble with readonlymode.enabled=true, a mount on every member"
ens_start_mounted --set "readonlymode.enabled=true" --set "mount.writeTimeoutMs=$WRITE_MS"
L=$(ens leader)
F=$([ "$L" = 1 ] && echo 2 || echo 1)
others=()
for i in 1 2 3; do [ "$i" != "$F" ] && others+=("$i"); done
A=$(M "$F")
mkdir "$A/ro" && echo before >"$A/ro/f" && echo line1 >"$A/ro/log"
check "member $F's mount has the files" test "$(cat "$A/ro/f")" = before
check "isro says rw while the ensemble serves" test "$(isro "$F")" = rw

echo "== kill -9 members ${others[*]}: member $F is cut off"
for i in "${others[@]}"; do ens kill "$i" >/dev/null; done
t0=$(date +%s%N)
isro_is() { [ "$(isro "$F")" = "$1" ]; }
check "member $F turns read-only (isro: ro)" wait_for 20 isro_is ro
echo "     read-only after $(ms_since "$t0") ms (grace: max(2000 ms, tickTime))"
check "the mount logs once that it is read-only" wait_for 5 test "$(ro_lines "$F")" -ge 1
check "reads answer from the member's tree (cat)" test "$(cat "$A/ro/f")" = before
check "reads answer from the member's tree (ls)" test "$(ls "$A/ro" | tr '\n' ' ')" = "f log "
t1=$(date +%s%N)
msg=$(msg_of bash -c "echo x >'$A/ro/f'")
ms=$(ms_since "$t1")
check "echo x > file fails with EROFS (got '$msg')" test "$msg" = "Read-only file system"
check "  at once, not after mount.writeTimeoutMs ($ms ms)" test "$ms" -lt 1500
check "echo x >> file fails with EROFS" test "$(msg_of bash -c "echo x >>'$A/ro/log'")" = "Read-only file system"
check "mkdir fails with EROFS" test "$(msg_of mkdir "$A/ro/new")" = "Read-only file system"
check "rm fails with EROFS" test "$(msg_of rm "$A/ro/log")" = "Read-only file system"
check "touch of a new file fails with EROFS" test "$(msg_of touch "$A/ro/new")" = "Read-only file system"
check "mv fails with EROFS" test "$(msg_of mv "$A/ro/log" "$A/ro/log2")" = "Read-only file system"
check "sync DIR fails with EROFS" test "$(msg_of sync "$A/ro")" = "Read-only file system"
check "nothing changed" test "$(cat "$A/ro/f")/$(cat "$A/ro/log")/$(ls "$A/ro" | wc -l)" = "before/line1/2"
check "the read-only line was logged once" test "$(ro_lines "$F")" -eq 1
check "no write waited for mount.writeTimeoutMs" sh -c "! grep -q 'no serving leader for' '$(log "$F")'"

echo "== heal: start members ${others[*]} again"
t2=$(date +%s%N)
for i in "${others[@]}"; do ens start-member "$i" >/dev/null; done
check "writes through member $F's mount work again" wait_for 40 bash -c "echo after >'$A/ro/f' 2>/dev/null"
echo "     first write accepted $(ms_since "$t2") ms after the restart began"
check "the mount logged the end of read-only mode" grep -q "read-only mode ended" "$(log "$F")"
check "isro says rw again" wait_for 10 isro_is rw
check "mkdir works again" mkdir "$A/ro/new"
for i in "${others[@]}"; do check "member $i mounted again" wait_mount "$i"; done
B=$(M "${others[0]}")
check "another member's mount sees the write" wait_for 10 sh -c "[ \"\$(cat '$B/ro/f')\" = after ] && [ -d '$B/ro/new' ]"
finish
