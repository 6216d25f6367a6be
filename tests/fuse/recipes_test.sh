#!/usr/bin/env bash
# The recipes of scripts/recipes/ with many concurrent shells spread over a LIST of mounts.
#   QUORUMFSD=.../quorumfsd recipes_test.sh                 # starts one member with a mount
#   QUORUMFSD=.../quorumfsd recipes_test.sh MNT1 MNT2 MNT3  # existing mounts (an ensemble's)
# Environment: LOCK_SHELLS (30), LOCK_TOTAL (100; 200 with QFS_LONG=1); for lock --fair
# FAIR_SHELLS (LOCK_SHELLS), FAIR_TOTAL (45; 90 with QFS_LONG=1). fuse_ensemble passes 200 and
# 90 over its 3 mounts, so the default run keeps the full count where it is hardest.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
R=$(cd "$here/../../scripts/recipes" && pwd)
mounts=("$@")
if [ ${#mounts[@]} -eq 0 ]; then
  qfs_start a
  mounts=("$MNT_a")
fi
nm=${#mounts[@]}
echo "mounts: ${mounts[*]}"
base=/recipes-$$
mkdir "${mounts[0]}$base" || exit 1
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base" || { fail "$m does not see $base"; exit 1; }; done
mnt() { echo "${mounts[$(($1 % nm))]}"; }
L=$QFS_TMP/logs
mkdir -p "$L"

# Runs "$@" in the background, remembers the PID for cleanup.
bg() { "$@" & QFS_BG+=($!); }
# Waits for the PIDs in $@, at most SECS; fails DESC if any is still running.
wait_all() {
  local secs=$1 desc=$2; shift 2
  local end=$((SECONDS + secs)) p
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then fail "$desc: still running after $secs s (lost wake-up?)"; return 1; fi
    wait "$p" 2>/dev/null
  done
  return 0
}

echo "== exclusive lock (mkdir NAME@eph / inotifywait / rmdir)"
shells=${LOCK_SHELLS:-30}
total=${LOCK_TOTAL:-$([ -n "${QFS_LONG:-}" ] && echo 200 || echo 100)}
mkdir "${mounts[0]}$base/locks"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/locks"; done
: >"$L/lock.log"
holder() {  # holder ID: appends in/out lines while holding the lock
  echo "in $1 $(date +%s%N)" >>"$L/lock.log"
  sleep 0.00$((RANDOM % 5))
  echo "out $1 $(date +%s%N)" >>"$L/lock.log"
}
export -f holder
export L
pids=()
t0=$(date +%s%N)
for i in $(seq 0 $((shells - 1))); do
  n=$((total / shells + (i < total % shells ? 1 : 0)))
  m=$(mnt "$i")
  bash -c "for k in \$(seq $n); do QFS_RECHECK_S=30 '$R/lock' '$m$base/locks' L holder $i-\$k || exit 1; done" &
  pids+=($!)
  QFS_BG+=($!)
done
wait_all 300 "lock shells" "${pids[@]}"
t1=$(date +%s%N)
acq=$(grep -c '^in ' "$L/lock.log")
check "$total acquisitions by $shells shells over $nm mount(s) (got $acq)" test "$acq" -eq "$total"
overlaps=$(awk '$1=="in"{ if (held) bad++; held=1; id=$2 } $1=="out"{ if (!held || $2!=id) bad++; held=0 } END{ print bad+0 }' "$L/lock.log")
check "never two holders at once (overlaps: $overlaps)" test "$overlaps" -eq 0
# Hand-over: from one holder's "out" to the next "in". A lost wake-up would show as a gap of
# QFS_RECHECK_S (30 s); every gap must be far below it.
gaps=$(awk '$1=="out"{ t=$3 } $1=="in" && t{ print ($3 - t) / 1e6 }' "$L/lock.log" | sort -n)
maxgap=$(tail -1 <<<"$gaps")
p50gap=$(sed -n "$(( ($(wc -l <<<"$gaps") + 1) / 2 ))p" <<<"$gaps")
echo "     hand-over: p50 ${p50gap} ms, max ${maxgap} ms; $total acquisitions in $(((t1 - t0) / 1000000)) ms"
check "no lost wake-up (every hand-over < 5 s)" awk -v g="$maxgap" 'BEGIN{ exit !(g < 5000) }'

echo "== fair lock (lock --fair: ephemeral sequential nodes, each waiter watches its predecessor)"
fshells=${FAIR_SHELLS:-$shells}
ftotal=${FAIR_TOTAL:-$([ -n "${QFS_LONG:-}" ] && echo 90 || echo 45)}
mkdir "${mounts[0]}$base/flocks"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/flocks"; done
: >"$L/fair.log"
fholder() {  # ID: a local mark that only one holder may have (mkdir is atomic on local disk)
  mkdir "$L/fair.mark" 2>/dev/null || echo "overlap $1" >>"$L/fair.log"
  echo "in $1 ${QFS_LOCK_NODE: -10} $(date +%s%N)" >>"$L/fair.log"
  sleep 0.00$((RANDOM % 5))
  echo "out $1 ${QFS_LOCK_NODE: -10} $(date +%s%N)" >>"$L/fair.log"
  rmdir "$L/fair.mark"
}
export -f fholder
pids=()
t0=$(date +%s%N)
for i in $(seq 0 $((fshells - 1))); do
  n=$((ftotal / fshells + (i < ftotal % fshells ? 1 : 0)))
  m=$(mnt "$i")
  bash -c "for k in \$(seq $n); do QFS_RECHECK_S=30 '$R/lock' --fair '$m$base/flocks' F fholder $i-\$k || exit 1; done" &
  pids+=($!)
  QFS_BG+=($!)
done
wait_all 300 "fair lock shells" "${pids[@]}"
t1=$(date +%s%N)
acq=$(grep -c '^in ' "$L/fair.log")
check "$ftotal acquisitions by $fshells shells over $nm mount(s) (got $acq)" test "$acq" -eq "$ftotal"
check "never two holders at once (no 'overlap' in the log)" sh -c "! grep -q '^overlap' '$L/fair.log'"
overlaps=$(awk '$1=="in"{ if (held) bad++; held=1; id=$2 } $1=="out"{ if (!held || $2!=id) bad++; held=0 } END{ print bad+0 }' "$L/fair.log")
check "  in/out strictly alternate (violations: $overlaps)" test "$overlaps" -eq 0
# FIFO: the lock goes by sequence number, so the acquisitions (in log order) have increasing
# numbers — whichever mount and shell each came from.
unfair=$(awk '$1=="in"{ s = $3 + 0; if (n++ && s <= last) bad++; last = s } END{ print bad+0 }' "$L/fair.log")
check "acquired in the order of the sequence numbers (FIFO; out of order: $unfair)" test "$unfair" -eq 0
gaps=$(awk '$1=="out"{ t=$4 } $1=="in" && t{ print ($4 - t) / 1e6 }' "$L/fair.log" | sort -n)
maxgap=$(tail -1 <<<"$gaps")
p50gap=$(sed -n "$(( ($(wc -l <<<"$gaps") + 1) / 2 ))p" <<<"$gaps")
echo "     hand-over: p50 ${p50gap} ms, max ${maxgap} ms; $ftotal acquisitions in $(((t1 - t0) / 1000000)) ms"
check "no lost wake-up (every hand-over < 5 s)" awk -v g="$maxgap" 'BEGIN{ exit !(g < 5000) }'
check "  no node left in the queue" test -z "$(ls -A "${mounts[0]}$base/flocks/F")"

echo "== fair lock: SIGTERM and kill -9 of a waiting shell, kill -9 of the holding shell"
: >"$L/fk.log"
fhold() {  # ID [GATE]: logs in/out; with GATE, holds until the file GATE exists
  echo "in $1 $(date +%s%N)" >>"$L/fk.log"
  if [ -n "${2:-}" ]; then while [ ! -e "$2" ]; do sleep 0.05; done; fi
  echo "out $1 $(date +%s%N)" >>"$L/fk.log"
}
export -f fhold
K=$base/flocks/K
nodes() { ls "${mounts[0]}$K" 2>/dev/null | wc -l; }
bg "$R/lock" --fair "$(mnt 0)$base/flocks" K fhold H "$L/go.H"
h=$!
wait_for 10 grep -q "^in H" "$L/fk.log"
bg "$R/lock" --fair "$(mnt 1)$base/flocks" K fhold W1
w1=$!
wait_for 10 sh -c "[ \$(ls '${mounts[0]}$K' | wc -l) -eq 2 ]"
bg "$R/lock" --fair "$(mnt 2)$base/flocks" K fhold W2
w2=$!
wait_for 10 sh -c "[ \$(ls '${mounts[0]}$K' | wc -l) -eq 3 ]"
bg "$R/lock" --fair "$(mnt 0)$base/flocks" K fhold W3
w3=$!
check "a holder and 3 waiters queued (4 nodes)" wait_for 10 sh -c "[ \$(ls '${mounts[0]}$K' | wc -l) -eq 4 ]"
bg "$R/lock" --fair "$(mnt 1)$base/flocks" K fhold W4
w4=$!
wait_for 10 sh -c "[ \$(ls '${mounts[0]}$K' | wc -l) -eq 5 ]"
kill -TERM "$w4"
wait_all 10 "the waiter stopped by SIGTERM" "$w4"
check "SIGTERM of the last waiter: it exits and its node goes" \
  wait_for 10 sh -c "[ \$(ls '${mounts[0]}$K' | wc -l) -eq 4 ]"
w1node=$(ls "${mounts[0]}$K" | awk '{ print substr($0, length($0) - 9) " " $0 }' | sort | sed -n '2s/.* //p')
kill -KILL "$w1"; wait "$w1" 2>/dev/null
check "kill -9 of the first waiter (mount 1): its node goes (no daemon died)" \
  wait_for 10 sh -c "[ ! -e '${mounts[0]}$K/$w1node' ] && [ \$(ls '${mounts[0]}$K' | wc -l) -eq 3 ]"
kill -KILL "$h"; wait "$h" 2>/dev/null
sleep 1
check "kill -9 of the holding shell while its CMD runs: the lock stays with CMD" \
  test "$(grep -c '^in ' "$L/fk.log")" -eq 1
check "  (its node is still there)" test "$(nodes)" -eq 3
touch "$L/go.H"
wait_all 20 "the waiters after the kills" "$w2" "$w3"
check "when CMD ends the next live waiter takes it: H, W2, W3 in order (W1, W4 never)" \
  test "$(awk '$1=="in"{ printf "%s ", $2 }' "$L/fk.log")" = "H W2 W3 "
bad=$(awk '$1=="in"{ if (held) bad++; held=1 } $1=="out"{ held=0 } END{ print bad+0 }' "$L/fk.log")
check "  one holder at a time (violations: $bad)" test "$bad" -eq 0
check "  the queue is empty" wait_for 10 sh -c "[ -z \"\$(ls -A '${mounts[0]}$K')\" ]"

echo "== shared read / write lock"
mkdir "${mounts[0]}$base/rw"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/rw"; done
: >"$L/rw.log"
rwholder() {
  echo "in $1 $2 $(date +%s%N)" >>"$L/rw.log"
  sleep 0.0$((RANDOM % 3 + 1))
  echo "out $1 $2 $(date +%s%N)" >>"$L/rw.log"
}
export -f rwholder
pids=()
for i in $(seq 0 11); do
  mode=read
  [ $((i % 3)) -eq 0 ] && mode=write
  m=$(mnt "$i")
  bash -c "for k in 1 2 3; do '$R/rwlock' '$m$base/rw' $mode rwholder $mode $i-\$k || exit 1; done" &
  pids+=($!)
  QFS_BG+=($!)
done
wait_all 120 "rwlock shells" "${pids[@]}"
check "36 lock holds" test "$(grep -c '^in ' "$L/rw.log")" -eq 36
bad=$(awk '$1=="in"{ if ($2=="write" && (r>0 || w>0)) bad++; if ($2=="read" && w>0) bad++; if ($2=="write") w++; else r++ }
           $1=="out"{ if ($2=="write") w--; else r-- } END{ print bad+0 }' "$L/rw.log")
check "a writer never overlaps anyone (violations: $bad)" test "$bad" -eq 0
shared=$(awk '$1=="in"{ if ($2=="read") { r++; if (r>1) s++ } } $1=="out"{ if ($2=="read") r-- } END{ print s+0 }' "$L/rw.log")
echo "     readers held the lock together $shared times"

echo "== leader election"
mkdir "${mounts[0]}$base/elect"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/elect"; done
: >"$L/elect.log"
lead() {
  echo "lead $1 $(date +%s%N)" >>"$L/elect.log"
  sleep 0.2
  echo "resign $1 $(date +%s%N)" >>"$L/elect.log"
}
export -f lead
# A leader that leads until it is stopped (SIGTERM); six candidates queue behind it.
bg "$R/elect" "$(mnt 6)$base/elect" bash -c 'echo "lead c6 $(date +%s%N)" >>"$L/elect.log"; sleep 600'
stubborn=$!
wait_for 10 grep -q "lead c6" "$L/elect.log"
pids=()
for i in $(seq 0 5); do
  bg "$R/elect" "$(mnt "$i")$base/elect" lead "c$i"
  pids+=($!)
done
wait_for 10 sh -c "[ \$(ls '${mounts[0]}$base/elect' | wc -l) -eq 7 ]"
sleep 0.5
check "the others wait while the leader leads" test "$(grep -c '^lead ' "$L/elect.log")" -eq 1
echo "resign c6 $(date +%s%N)" >>"$L/elect.log"
kill -TERM "$stubborn"
wait_all 10 "the stopped leader" "$stubborn"
wait_all 60 "candidates" "${pids[@]}"
check "every candidate led once" test "$(grep -c '^lead ' "$L/elect.log")" -eq 7
bad=$(awk '$1=="lead"{ if (l) bad++; l=1 } $1=="resign"{ l=0 } END{ print bad+0 }' "$L/elect.log")
check "exactly one leader at a time (violations: $bad)" test "$bad" -eq 0
wait_for 10 sh -c "[ -z \"\$(ls -A '${mounts[0]}$base/elect')\" ]"
check "all candidates left (nodes gone)" test -z "$(ls -A "${mounts[0]}$base/elect")"

echo "== FIFO queue"
mkdir "${mounts[0]}$base/q"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/q"; done
# A taker that finds the queue empty must wake up for an item put later (on another mount).
"$R/queue" take "$(mnt 0)$base/q" >"$L/first-take" &
first=$!
QFS_BG+=("$first")
sleep 0.5
check "a taker waits while the queue is empty" kill -0 "$first"
"$R/queue" put "$(mnt 1)$base/q" early
wait_all 10 "the waiting taker" "$first" && check "  and takes the item put later" test "$(cat "$L/first-take")" = early
pids=()
for c in $(seq 0 3); do
  bash -c "for k in \$(seq 50); do '$R/queue' take '$(mnt "$c")$base/q' || exit 1; done" >"$L/consumer.$c" &
  pids+=($!)
  QFS_BG+=($!)
done
ppids=()
for p in $(seq 0 3); do
  bash -c "for k in \$(seq 50); do '$R/queue' put '$(mnt $((p + 1)))$base/q' 'item-$p-'\$k || exit 1; done" &
  ppids+=($!)
  QFS_BG+=($!)
done
wait_all 120 "producers" "${ppids[@]}"
wait_all 120 "consumers" "${pids[@]}"
cat "$L"/consumer.* | sort >"$L/consumed"
for p in $(seq 0 3); do for k in $(seq 50); do echo "item-$p-$k"; done; done | sort >"$L/produced"
check "every item consumed exactly once (200 items, 4 producers, 4 consumers)" cmp -s "$L/produced" "$L/consumed"
# FIFO: each consumer takes the oldest item, so what one consumer got from one producer (who
# publishes in order) comes in increasing order.
fifo_bad=$(for c in "$L"/consumer.*; do awk -F- '{ if (($2 in last) && $3 + 0 < last[$2]) bad++; last[$2] = $3 + 0 } END{ print bad + 0 }' "$c"; done | awk '{ s += $1 } END{ print s + 0 }')
check "  in FIFO order (each consumer got each producer's items in order; violations: $fifo_bad)" test "$fifo_bad" -eq 0
check "  the queue is empty" test -z "$(ls -A "${mounts[0]}$base/q")"

echo "== barrier"
mkdir "${mounts[0]}$base/bar"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/bar"; done
pids=()
for i in $(seq 0 4); do
  bash -c "sleep 0.$((i * 2)); echo enter \$(date +%s%N) >>'$L/bar.log'; '$R/barrier' '$(mnt "$i")$base/bar' 5 && echo leave \$(date +%s%N) >>'$L/bar.log'" &
  pids+=($!)
  QFS_BG+=($!)
done
wait_all 30 "barrier participants" "${pids[@]}"
check "all 5 passed the barrier" test "$(grep -c '^leave' "$L/bar.log")" -eq 5
last_enter=$(awk '$1=="enter"{ print $2 }' "$L/bar.log" | sort -n | tail -1)
first_leave=$(awk '$1=="leave"{ print $2 }' "$L/bar.log" | sort -n | head -1)
check "nobody left before the last one entered" test "$first_leave" -ge "$last_enter"

echo "== unique ids"
mkdir "${mounts[0]}$base/ids"
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base/ids"; done
pids=()
for i in $(seq 0 19); do
  bash -c "'$R/uniqueid' '$(mnt "$i")$base/ids'" >"$L/id.$i" &
  pids+=($!)
  QFS_BG+=($!)
done
wait_all 30 "uniqueid" "${pids[@]}"
check "20 concurrent ids, all distinct" test "$(cat "$L"/id.* | sort -u | wc -l)" -eq 20

echo "== config publish / subscribe"
cfg=$base/app.conf
"$R/config" publish "${mounts[0]}$cfg" "version 0"
for m in "${mounts[@]}"; do wait_for 10 test -f "$m$cfg"; done
for j in $(seq 0 $((nm - 1))); do
  bg "$R/config" subscribe "${mounts[$j]}$cfg" sh -c "cat '${mounts[$j]}$cfg'; echo" >"$L/sub.$j"
done
sleep 0.5
for v in 1 2 3 4 5; do
  "$R/config" publish "$(mnt $v)$cfg" "version $v"
  sleep 0.2
done
for j in $(seq 0 $((nm - 1))); do
  check "subscriber on mount $j saw the last version" wait_for 5 grep -q "^version 5$" "$L/sub.$j"
  check "  and only whole versions" sh -c "! grep -v '^version [0-5]\$' '$L/sub.$j'"
done

finish
