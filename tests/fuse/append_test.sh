#!/usr/bin/env bash
# Appends and write errors through the mounts of a real 3-member ensemble (docs/fuse.md,
# "Appends" and "Write errors"), with the shells' own builtins:
#   1. 12 shells, 4 on each mount, `echo "$id-$k-<padding>" >> log` 40 times each: all 480
#      lines, once and whole (the log spans many pages: the kernel must not split an append at
#      a page boundary); printf/tee -a/python "a" mixed in; every member's tree has the same
#      bytes;
#   2. the same with a member killed (-9) mid-run: every line whose `echo` exited 0 is there
#      exactly once, no line twice;
#   3. inotifywait -e close_write on one mount sees a file appended through another;
#   4. an append past jute.maxbuffer fails at write() with EFBIG, one without WRITE with EACCES;
#   5. two members killed: builtin `echo x > f`, `echo x >> f` (new and existing f) exit
#      non-zero on the survivor's mount, and nothing of them appears once the quorum is back.
#   QUORUMFSD=.../quorumfsd append_test.sh [PHASE...]  (phases: many kill watch limits noquorum)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
. "$here/ens_lib.sh"
WRITE_MS=2000
phases=${*:-many kill watch limits noquorum}
want() { [[ " $phases " == *" $1 "* ]]; }
leader() { ens leader 2>/dev/null; }
serves() { ens status | awk -v k="$1" '$1==k{ print $2 }' | grep -qE '^(leader|follower)$'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
zkget() { "$PY" "$here/zk.py" "$(port "$1")" get "$2"; }

echo "== a 3-member ensemble, a mount on every member (mount.writeTimeoutMs=$WRITE_MS)"
ens_start_mounted --set "mount.writeTimeoutMs=$WRITE_MS"
D=/app-$$
mkdir "$(M 1)$D"
for i in 1 2 3; do wait_for 10 test -d "$(M $i)$D"; done

# appender ID MOUNT FILE N ACKS [PAD]: appends "ID-k[-PAD]" N times with builtin echo; records
# each line whose echo exited 0 in ACKS (local disk).
appender() {
  local id=$1 m=$2 f=$3 n=$4 acks=$5 pad=${6:+-$6} k
  for k in $(seq "$n"); do
    if echo "$id-$k$pad" >>"$m$f" 2>/dev/null; then echo "$id-$k$pad" >>"$acks"; fi
  done
}
# About 120 bytes a line: 480 lines span 14 pages, and appends cross page boundaries.
PAD=$(printf 'x%.0s' $(seq 100))

# dups_in FILE: how many distinct lines occur more than once.
dups_in() { sort "$1" | uniq -d | wc -l; }

if want many; then
  echo "== 12 shells on 3 mounts append 40 lines of about 120 bytes each (builtin echo >>)"
  : >"$QFS_TMP/acks"
  pids=()
  t0=$(date +%s%N)
  for s in $(seq 0 11); do
    i=$((s % 3 + 1))
    bash -c "$(declare -f appender); appender s$s $(M $i) $D/log 40 $QFS_TMP/acks.s$s $PAD" &
    pids+=($!)
    QFS_BG+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  echo "     480 appends in $(ms_since "$t0") ms"
  cat "$QFS_TMP"/acks.s* >"$QFS_TMP/acks"
  check "every echo >> exited 0 ($(wc -l <"$QFS_TMP/acks") of 480)" test "$(wc -l <"$QFS_TMP/acks")" -eq 480
  for i in 1 2 3; do
    wait_for 10 sh -c "[ \$(wc -l <'$(M $i)$D/log') -eq 480 ]"
    check "mount $i: the log holds 480 lines" test "$(wc -l <"$(M $i)$D/log")" -eq 480
    check "mount $i: each line exactly once" test "$(sort -u "$(M $i)$D/log" | wc -l)" -eq 480
  done
  bad=$(grep -cvE "^s[0-9]+-[0-9]+-$PAD\$" "$(M 1)$D/log" || true)
  check "no line split by another's append (broken lines: $bad)" test "$bad" -eq 0
  check "mount 1: the log is exactly the acknowledged lines" \
    test "$(sort "$QFS_TMP/acks" | md5sum)" = "$(sort "$(M 1)$D/log" | md5sum)"
  # Each shell's own lines keep their order (its appends are sequential).
  bad=0
  for s in $(seq 0 11); do
    grep "^s$s-" "$(M 2)$D/log" | cut -d- -f2 | sort -nc 2>/dev/null || bad=$((bad + 1))
  done
  check "each shell's lines are in its order" test "$bad" -eq 0
  a=$(md5sum <"$(M 1)$D/log")
  check "the 3 mounts show the same bytes" test "$a" = "$(md5sum <"$(M 2)$D/log")" -a "$a" = "$(md5sum <"$(M 3)$D/log")"

  echo "== printf >>, tee -a, python open(f, 'a') and builtin echo >>, at once on 3 mounts"
  pids=()
  for k in $(seq 20); do
    printf 'printf-%s\n' "$k" >>"$(M 1)$D/mixed" &
    pids+=($!)
    echo "tee-$k" | tee -a "$(M 2)$D/mixed" >/dev/null &
    pids+=($!)
    "$PY" -c "open('$(M 3)$D/mixed', 'a').write('py-$k\n')" &
    pids+=($!)
    (echo "echo-$k" >>"$(M $((k % 3 + 1)))$D/mixed") &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  wait_for 10 sh -c "[ \$(wc -l <'$(M 1)$D/mixed') -eq 80 ]"
  check "80 lines from 4 tools on 3 mounts, each once" \
    test "$(sort -u "$(M 1)$D/mixed" | grep -cE '^(printf|tee|py|echo)-[0-9]+$')" -eq 80
  check "  and the file is exactly those lines" test "$(wc -l <"$(M 1)$D/mixed")" -eq 80
  check "a network client reads the same bytes (kazoo on member 3)" \
    test "$(zkget 3 "$D/log" | md5sum)" = "$(md5sum <"$(M 1)$D/log")"
fi

if want kill; then
  echo "== 12 shells append while a member is killed (-9) mid-run"
  k=$(leader)
  k=$((k % 3 + 1))  # a follower: its shells' mount goes, the others go on
  rm -f "$QFS_TMP"/kacks.*
  pids=()
  for s in $(seq 0 11); do
    i=$((s % 3 + 1))
    bash -c "$(declare -f appender); appender k$s $(M $i) $D/klog 40 $QFS_TMP/kacks.s$s" 2>/dev/null &
    pids+=($!)
    QFS_BG+=($!)
  done
  sleep 1
  tk=$(date +%s%N)
  ens kill "$k"
  for p in "${pids[@]}"; do wait "$p"; done
  echo "     member $k killed; the shells finished $(ms_since "$tk") ms later"
  o=$((k % 3 + 1))
  cat "$QFS_TMP"/kacks.* >"$QFS_TMP/kacks"
  wait_for 10 sh -c "[ \$(sort -u '$QFS_TMP/kacks' | comm -23 - <(sort -u '$(M $o)$D/klog') 2>/dev/null | wc -l) -eq 0 ]" 2>/dev/null
  missing=$(sort -u "$QFS_TMP/kacks" | comm -23 - <(sort -u "$(M $o)$D/klog") | wc -l)
  echo "     $(wc -l <"$QFS_TMP/kacks") appends acknowledged (to every shell), $(wc -l <"$(M $o)$D/klog") lines in the log"
  check "every acknowledged line is in the log (missing: $missing)" test "$missing" -eq 0
  check "no line twice (duplicates: $(dups_in "$(M $o)$D/klog"))" test "$(dups_in "$(M $o)$D/klog")" -eq 0
  surv=$(for s in $(seq 0 11); do [ $((s % 3 + 1)) != "$k" ] && cat "$QFS_TMP/kacks.s$s"; done | wc -l)
  check "the surviving members' shells got all their appends acknowledged ($surv of 320)" test "$surv" -eq 320
  ens start-member "$k"
  check "the killed member comes back with its mount" wait_mount "$k"
  check "  and its mount shows the same log" wait_for 20 sh -c "cmp -s '$(M $k)$D/klog' '$(M $o)$D/klog'"
fi

if want watch; then
  echo "== inotifywait -e close_write on mount 1 sees appends made through mount 2"
  echo first >>"$(M 2)$D/watched"
  wait_for 10 test -e "$(M 1)$D/watched"
  inotifywait -q -m -e close_write -e modify --format '%e %f' "$(M 1)$D" >"$QFS_TMP/iw.out" 2>/dev/null &
  iw=$!
  QFS_BG+=("$iw")
  sleep 0.5
  echo second >>"$(M 2)$D/watched"
  echo new >>"$(M 3)$D/created-by-append"
  wait_for 5 sh -c "grep -q 'CLOSE_WRITE,CLOSE watched' '$QFS_TMP/iw.out' && grep -q 'CLOSE_WRITE,CLOSE created-by-append' '$QFS_TMP/iw.out'"
  kill "$iw" 2>/dev/null
  check "a remote append gives IN_MODIFY" grep -q "^MODIFY watched" "$QFS_TMP/iw.out"
  check "  and IN_CLOSE_WRITE" grep -q "CLOSE_WRITE,CLOSE watched" "$QFS_TMP/iw.out"
  check "a file created by a remote >> gives IN_CLOSE_WRITE" grep -q "CLOSE_WRITE,CLOSE created-by-append" "$QFS_TMP/iw.out"
  check "  with its data" test "$(cat "$(M 1)$D/created-by-append")" = new
fi

if want limits; then
  echo "== an append past jute.maxbuffer, and one without WRITE"
  head -c $((1024 * 1024 - 10)) /dev/zero | tr '\0' a >"$(M 1)$D/big"
  check "a small append still fits" sh -c "echo 12345678 >>'$(M 2)$D/big'"
  # The kernel hands the mount the part below the 1 MiB mark as a write of its own (a short
  # write, as at any file size limit); the rest is refused whole.
  msg=$(msg_of bash -c "echo 0123456789 >>'$(M 2)$D/big'")
  check "an append past 1 MiB fails at write() with EFBIG (got '$msg')" test "$msg" = "File too large"
  check "  and the node stays within the limit" test "$(stat -c %s "$(M 3)$D/big")" -le $((1024 * 1024))
  msg=$(msg_of bash -c "echo x >>'$(M 3)$D/big'")
  check "an append to a full node fails with EFBIG on another member (got '$msg')" test "$msg" = "File too large"
  check "  and appends nothing" test "$(stat -c %s "$(M 1)$D/big")" -eq "$(stat -c %s "$(M 3)$D/big")"
  echo "locked" >"$(M 1)$D/ro"
  setfattr -n user.zk.acl -v 'world:anyone:r' "$(M 1)$D/ro"
  wait_for 10 sh -c "getfattr --only-values -n user.zk.acl '$(M 2)$D/ro' 2>/dev/null | grep -q 'world:anyone:r'"
  msg=$(msg_of bash -c "echo more >>'$(M 2)$D/ro'")
  check "an append without WRITE fails with EACCES (got '$msg')" test "$msg" = "Permission denied"
  check "  and changes nothing" test "$(cat "$(M 3)$D/ro")" = locked
fi

if want noquorum; then
  echo "== two members killed: writes on the survivor fail at write(), and nothing appears later"
  s=$(leader)  # the survivor; any member works, the leader is the harder case (it proposes)
  echo keep >"$(M $s)$D/existing"
  for i in 1 2 3; do wait_for 10 test -e "$(M $i)$D/existing"; done
  others=()
  for i in 1 2 3; do [ "$i" != "$s" ] && others+=("$i"); done
  ens kill "${others[0]}"
  ens kill "${others[1]}"
  # Until it notices (syncLimit ticks) the survivor still thinks it serves: its writes are
  # sent and may be applied later (docs/fuse.md). Wait until it has stopped serving.
  check "the survivor stops serving" wait_for 30 eval "! serves $s"
  X=$(M "$s")
  t0=$(date +%s%N)
  bash -c "echo lost >'$X$D/new-plain'" 2>"$QFS_TMP/e1"
  rc1=$?
  ms=$(ms_since "$t0")
  check "builtin echo x > new exits non-zero (rc $rc1, $(sed 's/.*: //' "$QFS_TMP/e1"))" test "$rc1" -ne 0
  check "  after about mount.writeTimeoutMs ($ms ms)" test "$ms" -lt $((WRITE_MS + 3000))
  bash -c "echo lost >'$X$D/existing'" 2>/dev/null
  check "builtin echo x > existing exits non-zero" test $? -ne 0
  bash -c "echo lost >>'$X$D/new-append'" 2>/dev/null
  check "builtin echo x >> new exits non-zero" test $? -ne 0
  bash -c "echo lost >>'$X$D/existing'" 2>/dev/null
  check "builtin echo x >> existing exits non-zero" test $? -ne 0
  dash -c "echo lost >>'$X$D/existing'" 2>/dev/null
  check "dash's echo x >> existing exits non-zero" test $? -ne 0
  check "the survivor's log says why" grep -q "no serving leader" "$(log "$s")"
  ens start-member "${others[0]}"
  ens start-member "${others[1]}"
  for i in "${others[@]}"; do check "member $i comes back with its mount" wait_mount "$i"; done
  check "the survivor serves again" wait_for 30 serves "$s"
  sleep 1
  for i in 1 2 3; do
    check "mount $i: the failed writes left nothing: no new-plain" test ! -e "$(M $i)$D/new-plain"
    check "mount $i:   no new-append" test ! -e "$(M $i)$D/new-append"
    check "mount $i:   existing unchanged" test "$(cat "$(M $i)$D/existing")" = keep
  done
  check "writes work again on the former survivor" sh -c "echo back >>'$X$D/existing'"
fi

ens stop >/dev/null 2>&1
finish
