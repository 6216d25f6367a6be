#!/usr/bin/env bash
# quorumfsd and Apache ZooKeeper 3.8 side by side, by the protocol of BENCHMARKS.md
# "Side by side with ZooKeeper": the same zkbench (stock C client), tickTime 2000 on both,
# ZooKeeper with G1 and a pre-touched 1 GiB heap (forceSync is ZooKeeper's default, yes), a fresh
# ensemble per run, WARMUP s of load then DURATION s measured, RUNS runs per case, medians.
# Server CPU is utime+stime of every member process (the JVMs too) over the measured window only
# (zkbench prints "MEASURE start/end"), divided by the ops measured.
#
#   bench/speed_compare.sh --zkbench build/release/bench/zkbench \
#       --quorumfsd build/release/daemon/quorumfsd [--sizes 1,3,5] [--runs 3] [--cases LIST]
#
# Cases: name=workload:clients:outstanding[:leader|follower] (default: every member). Progress
# on stderr, raw RESULT lines in OUT/raw.txt, the Markdown table on stdout.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zkbench="" qfsd="" sizes=3 runs=3 warmup=8 duration=12 only="" out=""
all_cases="create-1x1=create:1:1:leader create-1x1-follower=create:1:1:follower"
all_cases+=" create-16x32=create:16:32 set-16x32=set:16:32 get-1x1=get:1:1:leader"
all_cases+=" get-1x1-follower=get:1:1:follower get-16x32=get:16:32 mixed-16x32=mixed:16:32"
all_cases+=" ephemeral-16x32=ephemeral:16:32 session-8=session:8:1"
cases=$all_cases
cmdline="bench/speed_compare.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --zkbench) zkbench=${2:?}; shift ;;
    --quorumfsd) qfsd=${2:?}; shift ;;
    --sizes) sizes=${2:?}; shift ;;
    --runs) runs=${2:?}; shift ;;
    --warmup) warmup=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --cases) cases=""; for c in ${2//,/ }; do cases+=" $(tr ' ' '\n' <<<"$all_cases" | grep "^$c=")"; done; shift ;;
    --only) only=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$zkbench" ] || { echo "give --zkbench PATH" >&2; exit 2; }
[ "$only" = zk ] || [ -x "$qfsd" ] || { echo "give --quorumfsd PATH (or --only zk)" >&2; exit 2; }
zkbench=$(realpath "$zkbench"); [ -n "$qfsd" ] && qfsd=$(realpath "$qfsd")
# shellcheck source=bench/lib_speed.sh
. "$here/lib_speed.sh"
speed_init speed_compare
sides=(); [ "$only" = quorumfs ] || sides+=(zk); [ "$only" = zk ] || sides+=(qfs)

IFS=, read -r -a sz <<<"$sizes"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for n in "${sz[@]}"; do
  for spec in $cases; do
    name=${spec%%=*}; IFS=: read -r w c o target <<<"${spec#*=}"
    for ((r = 1; r <= runs; r++)); do
      for side in "${sides[@]}"; do run_one "$side" "$n" "$name" "$w" "$c" "$o" "$target"; done
    done
  done
done

med() { grep "^$1 $2 $3 " "$raw" | while read -r l; do field "$l" "$4"; done | median; }
echo
echo "Command: \`$cmdline\`"
echo
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(date -u +%F), load before $load0;" \
  "tickTime 2000 on both; ZooKeeper 3.8, $QFS_ZK_JVM; fresh ensemble per run, $warmup s warm-up," \
  "$duration s measured, medians of $runs; 1 KiB values; CPU = server µs per op over all the members' processes."
for n in "${sz[@]}"; do
  echo
  echo "$n member(s):"
  echo
  echo "| case | ZooKeeper ops/s | quorumfs ops/s | ratio | p50 ms ZK → qfs | p99 ms ZK → qfs | CPU µs/op ZK → qfs | allocations/op (qfs) | sessions min..max (qfs) |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
  for spec in $cases; do
    name=${spec%%=*}
    zo=$(med zk "$n" "$name" ops_per_sec) qo=$(med qfs "$n" "$name" ops_per_sec)
    ratio=$(awk -v a="$zo" -v b="$qo" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f×", b / a; else print "–"}')
    echo "| $name | $zo | $qo | $ratio | $(med zk "$n" "$name" p50_ms) → $(med qfs "$n" "$name" p50_ms) | $(med zk "$n" "$name" p99_ms) → $(med qfs "$n" "$name" p99_ms) | $(med zk "$n" "$name" cpu_us_per_op) → $(med qfs "$n" "$name" cpu_us_per_op) | $(med qfs "$n" "$name" allocs_per_op) | $(med qfs "$n" "$name" sess_min)..$(med qfs "$n" "$name" sess_max) |"
  done
done
