#!/usr/bin/env bash
# Lock hand-over time of scripts/recipes/lock, simple (mkdir NAME@eph, every waiter retries on a
# release) and --fair (sequential nodes, each waiter watches its predecessor), on a 3-member
# ensemble with a mount on every member: SHELLS shells spread round-robin over the 3 mounts, each
# taking the lock ROUNDS times. Every holder logs "in"/"out" with `date +%s%N` to a local file;
# a hand-over is one holder's "out" to the next holder's "in" (both on this machine's clock).
#   QUORUMFSD=build/asan/daemon/quorumfsd bench/lock_handover.sh [--shells 30] [--rounds 3]
#   bench/lock_handover.sh --mounts M1 M2 M3 ...   (existing mounts of one ensemble, no start)
#   --keep DIR: copy the holders' logs and the sorted hand-over times there.
# Prints one line per kind: acquisitions, p50/p99/max hand-over (ms), total time. Everything it
# starts is stopped by PID on exit (tests/fuse/lib.sh, tests/fuse/ens_lib.sh).
set -u
shells=30 rounds=3 given=() keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --shells) shells=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --keep) keep=${2:?}; shift ;;
    --mounts) shift; given=("$@"); break ;;
    *) echo "usage: lock_handover.sh [--shells N] [--rounds K] [--keep DIR] [--mounts MNT...]" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")/../tests/fuse" && pwd)
R=$(cd "$here/../../scripts/recipes" && pwd)
. "$here/lib.sh"
if [ ${#given[@]} -eq 0 ]; then
  [ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
  export QUORUMFSD=$QFSD
  . "$here/ens_lib.sh"
  echo "starting a 3-member ensemble with a mount on every member" >&2
  ens start 3 --timeout 60 --set "mount=$QFS_TMP/m{id}" --set "mount.sessionTimeoutMs=4000" \
    >/dev/null || { echo "the ensemble did not start" >&2; exit 1; }
  for i in 1 2 3; do wait_mount "$i" || { echo "member $i did not mount" >&2; exit 1; }; done
  mounts=("$(M 1)" "$(M 2)" "$(M 3)")
else
  mounts=("${given[@]}")
fi
nm=${#mounts[@]}
base=/lock-bench-$$
mkdir "${mounts[0]}$base" || exit 1
for m in "${mounts[@]}"; do wait_for 10 test -d "$m$base" || { echo "$m does not see $base" >&2; exit 1; }; done
L=$QFS_TMP/bench
mkdir -p "$L"
bholder() {
  echo "in $1 $(date +%s%N)" >>"$LOG"
  echo "out $1 $(date +%s%N)" >>"$LOG"
}
export -f bholder

# pct FILE P: the P-th percentile of the sorted numbers in FILE.
pct() { awk -v p="$2" '{ a[NR] = $1 } END{ i = int((NR * p + 99) / 100); if (i < 1) i = 1; print a[i] }' "$1"; }

run() {  # KIND (simple|fair)
  local kind=$1 opt="" pids=() i t0 t1
  [ "$kind" = fair ] && opt=--fair
  export LOG=$L/$kind.log
  : >"$LOG"
  t0=$(date +%s%N)
  for i in $(seq 0 $((shells - 1))); do
    local m=${mounts[$((i % nm))]}
    bash -c "for k in \$(seq $rounds); do '$R/lock' $opt '$m$base' $kind bholder $i-\$k || exit 1; done" &
    pids+=($!)
    QFS_BG+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || echo "a $kind shell failed" >&2; done
  t1=$(date +%s%N)
  awk '$1=="out"{ t=$3 } $1=="in" && t{ printf "%.2f\n", ($3 - t) / 1e6 }' "$LOG" | sort -n >"$L/$kind.gaps"
  printf '%-6s %3d shells over %d mounts, %4d acquisitions: hand-over p50 %7s ms, p99 %7s ms, max %7s ms; total %d ms\n' \
    "$kind" "$shells" "$nm" "$(grep -c '^in ' "$LOG")" "$(pct "$L/$kind.gaps" 50)" "$(pct "$L/$kind.gaps" 99)" \
    "$(tail -1 "$L/$kind.gaps")" $(((t1 - t0) / 1000000))
}
run simple
run fair
[ -n "$keep" ] && mkdir -p "$keep" && cp "$L"/*.log "$L"/*.gaps "$keep"/
