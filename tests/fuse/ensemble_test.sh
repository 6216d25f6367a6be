#!/usr/bin/env bash
# The FUSE view on a real 3-member ensemble (issue 5, multi-member): a mount on every member.
#   1. recipes_test.sh over the 3 mounts (30 shells take the mkdir lock 200 times, rwlock,
#      election, FIFO queue, barrier, ids, config); election across a kill -9 of the member
#      whose mount holds the leadership (it is also the ZAB leader);
#   2. watch_test.py: changes through member B's mount and by a kazoo client on member C give
#      the right inotify events on member A's mount (delays printed);
#   3. faults: kill -9 of a member whose mount holds @eph locks and a fair lock (the other
#      mounts' shells get them after mount.sessionTimeoutMs); a member cut off from the quorum (proxy `isolate`):
#      writes fail with ETIMEDOUT after mount.writeTimeoutMs, cat/ls answer from the local
#      replica, `sync DIR` fails with ETIMEDOUT, SIGINT interrupts a blocked write (EINTR); after
#      the cut outlived the mount's session: a file open across the cut commits at close()
#      under a new session, the next write() fails with ECONNRESET once, and the mount shows
#      what changed meanwhile.
#   QUORUMFSD=.../quorumfsd ensemble_test.sh [PHASE...]   (phases: recipes election watch eph cut)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
R=$(cd "$here/../../scripts/recipes" && pwd)
. "$here/ens_lib.sh"
SESSION_MS=2000
WRITE_MS=3000
phases=${*:-recipes election watch eph cut}
want() { [[ " $phases " == *" $1 "* ]]; }

mounted() { grep -q " $(M "$1") fuse.quorumfs" /proc/mounts; }
leader() { ens leader 2>/dev/null; }
is_follower() { [ "$(ens status | awk -v k="$1" '$1==k{ print $2 }')" = follower ]; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

echo "== a 3-member ensemble (with the link proxy), a mount on every member"
t0=$(date +%s%N)
if ! ens start 3 --proxy --timeout 60 --set "mount=$QFS_TMP/m{id}" \
  --set "mount.sessionTimeoutMs=$SESSION_MS" --set "mount.writeTimeoutMs=$WRITE_MS"; then
  fail "the ensemble did not start"
  for i in 1 2 3; do tail -20 "$(log $i)"; done
  finish
  exit 1
fi
for i in 1 2 3; do check "member $i mounted the tree on $(M $i)" wait_mount $i; done
echo "     up and mounted in $(ms_since "$t0") ms; leader: member $(leader)"
ens status

if want recipes; then
  echo "== recipes over the 3 mounts (recipes_test.sh)"
  LOCK_SHELLS=30 LOCK_TOTAL=200 FAIR_TOTAL=90 bash "$here/recipes_test.sh" "$(M 1)" "$(M 2)" "$(M 3)" 2>&1 | sed -u 's/^/   | /'
  check "recipes_test.sh over the ensemble's mounts passed" test "${PIPESTATUS[0]}" -eq 0
fi

if want election; then
  echo "== election across a kill -9 of the leading shell's member (the ZAB leader)"
  k=$(leader)
  others=()
  for i in 1 2 3; do [ "$i" != "$k" ] && others+=("$i"); done
  D=/elect-$$
  mkdir "$(M "$k")$D"
  for i in 1 2 3; do wait_for 10 test -d "$(M $i)$D"; done
  : >"$QFS_TMP/elect.log"
  lead() {
    echo "lead $1 $(date +%s%N)" >>"$QFS_TMP/elect.log"
    sleep 0.3
    echo "resign $1 $(date +%s%N)" >>"$QFS_TMP/elect.log"
  }
  export -f lead
  export QFS_TMP
  # The first candidate, on the member that is killed, leads until then.
  # (exec: no orphaned sleep keeps ctest's output pipe open; TERM reaches it through the recipe.)
  "$R/elect" "$(M "$k")$D" bash -c 'echo "lead dead $(date +%s%N)" >>"$QFS_TMP/elect.log"; exec sleep 600' \
    >/dev/null 2>&1 &
  first=$!
  QFS_BG+=("$first")
  wait_for 10 grep -q "lead dead" "$QFS_TMP/elect.log"
  pids=()
  for c in 0 1 2 3 4 5; do
    "$R/elect" "$(M "${others[$((c % 2))]}")$D" lead "c$c" &
    pids+=($!)
    QFS_BG+=($!)
  done
  wait_for 10 sh -c "[ \$(ls '$(M "${others[0]}")$D' | wc -l) -eq 7 ]"
  sleep 0.5
  check "the candidates wait while the first leads" test "$(grep -c '^lead ' "$QFS_TMP/elect.log")" -eq 1
  tk=$(date +%s%N)
  ens kill "$k"
  echo "resign dead $tk" >>"$QFS_TMP/elect.log"
  kill -TERM "$first" 2>/dev/null  # its mount is gone; the recipe stops its command and exits
  wait_for 5 sh -c "! kill -0 $first 2>/dev/null" || kill -KILL "$first" 2>/dev/null
  check "a new leader after the kill" wait_for 30 sh -c "[ \$(grep -c '^lead ' '$QFS_TMP/elect.log') -ge 2 ]"
  tn=$(awk '$1=="lead" && $2!="dead"{ print $3 }' "$QFS_TMP/elect.log" | sort -n | head -1)
  [ -n "$tn" ] && echo "     new leader $(((tn - tk) / 1000000)) ms after the kill -9 (mount.sessionTimeoutMs=$SESSION_MS; ZAB re-election included); ensemble leader now: member $(leader)"
  end=$((SECONDS + 60))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
  done
  check "every candidate led once" test "$(grep -c '^lead ' "$QFS_TMP/elect.log")" -eq 7
  bad=$(awk '$1=="lead"{ if (l) bad++; l=1 } $1=="resign"{ l=0 } END{ print bad+0 }' "$QFS_TMP/elect.log")
  check "exactly one leader at a time (violations: $bad)" test "$bad" -eq 0
  check "no candidate node left" wait_for 10 sh -c "[ -z \"\$(ls -A '$(M "${others[0]}")$D')\" ]"
  ens start-member "$k"
  check "the killed member comes back with its mount (stale mount detached)" wait_mount "$k"
  check "  and sees the others' work" wait_for 20 test -d "$(M "$k")$D"
fi

if want watch; then
  echo "== watches across members (A: mount of member 1; B: mount of member 2; kazoo on member 3)"
  "$PY" "$here/watch_test.py" --mount-a "$(M 1)" --mount-b "$(M 2)" --hosts "127.0.0.1:$(port 3)" 2>&1 | sed -u 's/^/   | /'
  check "watch_test.py across members passed" test "${PIPESTATUS[0]}" -eq 0
fi

if want eph; then
  echo "== kill -9 of a member whose mount holds @eph locks"
  k=$(leader)
  k=$((k % 3 + 1))  # a follower
  others=()
  for i in 1 2 3; do [ "$i" != "$k" ] && others+=("$i"); done
  D=/eph-$$
  mkdir "$(M "$k")$D" "$(M "$k")$D/l1@eph" "$(M "$k")$D/l2@eph"
  for i in "${others[@]}"; do wait_for 10 test -d "$(M "$i")$D/l2"; done
  check "the locks are held (seen from another member's mount)" test -d "$(M "${others[0]}")$D/l1"
  # A fair lock held by a shell on member k (its CMD runs on): its node is k's session's too.
  "$R/lock" --fair "$(M "$k")$D" F sleep 600 &
  QFS_BG+=($!)
  check "  and a fair lock (lock --fair) held on member $k" \
    wait_for 10 sh -c "ls '$(M "${others[1]}")$D/F' 2>/dev/null | grep -q '^lock-'"
  rm -f "$QFS_TMP"/got.*
  pids=()
  timeout 30 "$R/lock" --fair "$(M "${others[1]}")$D" F sh -c "date +%s%N >'$QFS_TMP/got.f'" &
  pids+=($!)
  QFS_BG+=($!)
  for j in 0 1; do
    i=${others[$j]}
    timeout 30 "$R/lock" "$(M "$i")$D" "l$((j + 1))" sh -c "date +%s%N >'$QFS_TMP/got.$j'; sleep 0.2" &
    pids+=($!)
    QFS_BG+=($!)
  done
  sleep 0.5
  check "the other members' shells wait" test ! -e "$QFS_TMP/got.0" -a ! -e "$QFS_TMP/got.1" -a ! -e "$QFS_TMP/got.f"
  tk=$(date +%s%N)
  ens kill "$k"
  for p in "${pids[@]}"; do wait "$p"; done
  for j in 0 1; do
    t=$(cat "$QFS_TMP/got.$j" 2>/dev/null || echo 0)
    check "a shell on member ${others[$j]} acquires l$((j + 1)) after the session timeout" test "$t" -gt 0
    [ "$t" -gt 0 ] && echo "     acquired $(((t - tk) / 1000000)) ms after the kill -9 (mount.sessionTimeoutMs=$SESSION_MS)"
    [ "$t" -gt 0 ] && check "  not before the session timeout" test $(((t - tk) / 1000000)) -ge $((SESSION_MS - 200))
  done
  t=$(cat "$QFS_TMP/got.f" 2>/dev/null || echo 0)
  check "a fair-lock waiter on member ${others[1]} acquires F after the session timeout" test "$t" -gt 0
  [ "$t" -gt 0 ] && echo "     acquired $(((t - tk) / 1000000)) ms after the kill -9"
  [ "$t" -gt 0 ] && check "  not before the session timeout" test $(((t - tk) / 1000000)) -ge $((SESSION_MS - 200))
  ens start-member "$k"
  check "the killed member comes back with its mount" wait_mount "$k"
  check "  where the expired locks are gone" wait_for 20 test ! -e "$(M "$k")$D/l1"
fi

if want cut; then
  echo "== a member cut off from the quorum (proxy: isolate)"
  k=$(leader)
  k=$((k % 3 + 1))  # a follower
  o=$((k % 3 + 1))
  X=$(M "$k")
  Y=$(M "$o")
  D=/cut-$$
  mkdir "$X$D"
  echo before >"$X$D/f"
  echo old >"$X$D/changed"
  mkdir "$X$D/gone" "$X$D/held@eph"
  for i in 1 2 3; do wait_for 10 test -d "$(M $i)$D/held"; done
  # Fill member k's kernel caches: the file data, the entries, and a negative entry.
  cat "$X$D/changed" >/dev/null
  stat "$X$D/gone" >/dev/null
  stat "$X$D/new" >/dev/null 2>&1
  ls "$X$D" >/dev/null
  # A file written before the cut and closed after the session expired: its commit at close()
  # must carry on under a new session (a shell ignores close()'s result).
  /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.write(fd, b"kept\n")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    os.close(fd)
    print("close ok")
except OSError as e:
    print("close failed: %s" % e.strerror)
' "$X$D/heldopen" "$QFS_TMP/close-now" >"$QFS_TMP/heldopen.out" 2>&1 &
  holder=$!
  sleep 0.5
  ens isolate "$k"
  # The member notices after syncLimit ticks; writes fail the same way in either state.
  sleep 1.5
  t0=$(date +%s%N)
  msg=$(msg_of mkdir "$X$D/blocked")
  ms=$(ms_since "$t0")
  check "a write on the cut-off member fails with ETIMEDOUT (got '$msg')" test "$msg" = "Connection timed out"
  check "  after the bounded wait (mount.writeTimeoutMs=$WRITE_MS; took $ms ms)" test "$ms" -lt $((WRITE_MS + 2000))
  echo "     mkdir failed after $ms ms"
  check "  with a log line that says why" grep -q "no quorum" "$(log "$k")"
  check "reads answer from the local replica: cat" test "$(timeout 2 cat "$X$D/f")" = before
  check "reads answer from the local replica: ls" test "$(timeout 2 ls "$X$D" | tr '\n' ' ')" = "changed f gone held heldopen "
  t0=$(date +%s%N)
  msg=$(msg_of sync "$X$D")
  ms=$(ms_since "$t0")
  check "sync DIR fails with ETIMEDOUT (got '$msg' after $ms ms)" test "$msg" = "Connection timed out"
  check "  within the bounded wait" test "$ms" -lt $((WRITE_MS + 2000))
  check_sigint_mkdir "$X$D"
  # Meanwhile the majority goes on: it expires the cut-off mount's session, and changes things.
  check "the majority expires the cut-off mount's session (its @eph node goes)" \
    wait_for 20 test ! -e "$Y$D/held"
  echo new >"$Y$D/changed"
  rmdir "$Y$D/gone"
  echo n >"$Y$D/new"
  check "  while the cut-off mount still shows its stale replica" test "$(cat "$X$D/changed")" = old
  th=$(date +%s%N)
  ens heal
  check "the member serves again" wait_for 30 is_follower "$k"
  echo "     serving $(ms_since "$th") ms after the heal"
  check "  and its mount dropped its kernel caches (logged)" wait_for 5 grep -q "serves again" "$(log "$k")"
  # The mount shows the changes made while it was cut off (by apply listeners for a DIFF sync,
  # by dropping every cache for a TRUNC/SNAP one).
  check "the mount reads the new data" wait_for 10 sh -c "[ \"\$(cat '$X$D/changed')\" = new ]"
  check "  a node deleted meanwhile is gone" wait_for 10 test ! -e "$X$D/gone"
  check "  a node created meanwhile is there" wait_for 10 test -e "$X$D/new"
  touch "$QFS_TMP/close-now"
  wait "$holder"
  check "a file written before the cut, closed after the session expired: close() returns 0 ($(cat "$QFS_TMP/heldopen.out"))" \
    grep -q "close ok" "$QFS_TMP/heldopen.out"
  check "  and its data is committed (under a new session)" wait_for 10 sh -c "[ \"\$(cat '$Y$D/heldopen')\" = kept ]"
  check "  the mount logs its new session" grep -q "was lost; now using" "$(log "$k")"
  # The loss is still reported once, at the next call a shell checks: builtin printf's write().
  msg=$(bash -c 'printf x >"$1"' _ "$X$D/after1" 2>&1)
  check "the next write (builtin printf > f) fails with ECONNRESET (got '$msg')" \
    sh -c "echo '$msg' | grep -q 'Connection reset by peer'"
  check "  and commits nothing" test ! -e "$Y$D/after1"
  check "then writes work again, with the new session" wait_for 10 mkdir "$X$D/after2"
  check "  and builtin printf > f commits" sh -c "printf y >'$X$D/after3' && [ \"\$(cat '$Y$D/after3')\" = y ] || { sleep 1; [ \"\$(cat '$Y$D/after3')\" = y ]; }"
  mkdir "$X$D/eph2@eph"
  check "  whose ephemerals the other members see" wait_for 10 test -d "$Y$D/eph2"
fi

if [ "$FAILS" -gt 0 ]; then
  # What CI cannot keep: the members' view and their logs' roles, syncs and mount lines.
  echo "== after a failure: status and the members' logs"
  ens status
  for i in 1 2 3; do
    echo "-- member $i"
    grep -E 'WARN|ERROR|serving|syncs us|snapshot|session .* (opened|expired)|mount' "$(log $i)" | tail -60
  done
fi
ens stop >/dev/null 2>&1
for i in 1 2 3; do check "member $i unmounted cleanly at stop" sh -c "! grep -q ' $(M $i) fuse' /proc/mounts"; done
finish
