#!/usr/bin/env bash
# Throughput against latency, quorumfsd and Apache ZooKeeper 3.8, drawn with gnuplot: for each
# session count, a fresh 3-member ensemble of each server and one zkbench run (the protocol and
# run logic of bench/speed_compare.sh, shared in bench/lib_speed.sh), SESSIONS sessions keeping
# OUTSTANDING requests in flight each. x = ops/s, y = p50 (solid) and p99 (dashed) in ms, log.
#
#   bench/plot_latency.sh --zkbench build/release/bench/zkbench \
#       --quorumfsd build/release/daemon/quorumfsd [--workload create|get|set|mixed|ephemeral]
#       [--sessions 1,4,16,64] [--outstanding 32] [--warmup 8] [--duration 12] [--runs 1]
#       [--members 3] [--only zk|quorumfs] [--out DIR]
#
# Writes OUT/latency-W.dat (one row per server and session count, medians of RUNS), OUT/latency-W.gp
# (`gnuplot OUT/latency-W.gp` redraws the picture) and OUT/latency-W.png; raw RESULT lines in
# OUT/raw.txt; progress on stderr, the Markdown table on stdout. Needs gnuplot: bench/setup.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zkbench="" qfsd="" workload=create sessions=1,4,16,64 outstanding=32 warmup=8 duration=12
runs=1 members=3 only="" out=""
cmdline="bench/plot_latency.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --zkbench) zkbench=${2:?}; shift ;;
    --quorumfsd) qfsd=${2:?}; shift ;;
    --workload) workload=${2:?}; shift ;;
    --sessions) sessions=${2:?}; shift ;;
    --outstanding) outstanding=${2:?}; shift ;;
    --warmup) warmup=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --runs) runs=${2:?}; shift ;;
    --members) members=${2:?}; shift ;;
    --only) only=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
  shift
done
case "$workload" in create | get | set | mixed | ephemeral) ;; *) echo "workload: create, get, set, mixed or ephemeral" >&2; exit 2 ;; esac
[[ "$sessions" =~ ^[0-9]+(,[0-9]+)*$ && "$outstanding" =~ ^[0-9]+$ && "$runs" =~ ^[1-9][0-9]*$ && "$members" =~ ^[1-9][0-9]*$ ]] ||
  { echo "--sessions N,N,..., --outstanding N, --runs N and --members N take numbers" >&2; exit 2; }
[ -x "$zkbench" ] || { echo "give --zkbench PATH" >&2; exit 2; }
[ "$only" = zk ] || [ -x "$qfsd" ] || { echo "give --quorumfsd PATH (or --only zk)" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "gnuplot is missing: run bench/setup (installs gnuplot-nox)" >&2; exit 2; }
zkbench=$(realpath "$zkbench"); [ -n "$qfsd" ] && qfsd=$(realpath "$qfsd")
# shellcheck source=bench/lib_speed.sh
. "$here/lib_speed.sh"
speed_init plot_latency
sides=(); [ "$only" = quorumfs ] || sides+=(zk); [ "$only" = zk ] || sides+=(qfs)
IFS=, read -r -a ss <<<"$sessions"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
cpu="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/  */ /g')"
day=$(date -u +%F)
for ((r = 1; r <= runs; r++)); do
  for s in "${ss[@]}"; do
    for side in "${sides[@]}"; do
      run_one "$side" "$members" "$workload-${s}x$outstanding" "$workload" "$s" "$outstanding" ""
    done
  done
done

med() { grep "^$1 $members $2 " "$raw" | while read -r l; do field "$l" "$3"; done | median; }
label() { [ "$1" = zk ] && echo "ZooKeeper 3.8" || echo "quorumfs"; }
dat="$out/latency-$workload.dat" gp="$out/latency-$workload.gp" png="$out/latency-$workload.png"
{
  echo "# $cmdline"
  echo "# $cpu, $day; $members members, $workload, $outstanding outstanding per session, $warmup s warm-up, $duration s measured, medians of $runs"
  echo "# server sessions ops_per_sec p50_ms p99_ms p999_ms cpu_us_per_op"
} >"$dat"
blocks=()  # the gnuplot index of each side that has at least one point
for side in "${sides[@]}"; do
  rows=""
  for s in "${ss[@]}"; do
    name="$workload-${s}x$outstanding"
    o=$(med "$side" "$name" ops_per_sec)
    [ "$o" = – ] && continue
    rows+="$side $s $o $(med "$side" "$name" p50_ms) $(med "$side" "$name" p99_ms) $(med "$side" "$name" p999_ms) $(med "$side" "$name" cpu_us_per_op)"$'\n'
  done
  [ -n "$rows" ] || continue
  [ ${#blocks[@]} -gt 0 ] && printf '\n\n' >>"$dat"
  printf '%s' "$rows" >>"$dat"
  blocks+=("$side")
done

# The picture: one colour per server, p50 solid and p99 dashed, each point labelled with its
# session count; the log scale needs positive latencies, which zkbench's microsecond clock gives.
{
  echo "set terminal pngcairo size 1100,700 enhanced font 'DejaVu Sans,11'"
  echo "set output '$png'"
  # noenhanced: a CPU model may hold @, _ or ^, which enhanced text would take as markup
  printf 'set title "%s\\n%s" noenhanced\n' \
    "$workload: throughput against latency, $members members, $outstanding outstanding per session (point labels: sessions)" \
    "${cpu//\"/}; $day; $warmup s warm-up, $duration s measured, medians of $runs"
  echo "set xlabel 'throughput (ops/s)'"
  echo "set ylabel 'latency (ms, log scale)'"
  echo "set logscale y"
  echo "set format y '%g'"
  echo "set xrange [0:*]"
  # room right of the last point for its label; y autoscales out to whole decades, room enough
  echo "set offsets graph 0, graph 0.08, 0, 0"
  echo "set mytics 10"
  echo "set grid xtics ytics mytics lc rgb '#bbbbbb' lw 1, lc rgb '#e4e4e4' lw 1"
  echo "set key outside right top box opaque"
  echo "set datafile commentschars '#'"
  echo "set style textbox opaque noborder margins 0.5,0.5"  # a label stays legible over a line
  plots=()
  for i in "${!blocks[@]}"; do
    side=${blocks[$i]}
    [ "$side" = zk ] && color='#c0392b' || color='#1f4e99'
    plots+=("'$dat' index $i using 3:4 with linespoints lw 2 pt 7 ps 1.2 dt 1 lc rgb '$color' title '$(label "$side") p50'")
    plots+=("'$dat' index $i using 3:5 with linespoints lw 2 pt 5 ps 1.2 dt 2 lc rgb '$color' title '$(label "$side") p99'")
    plots+=("'$dat' index $i using 3:4:(sprintf('%d', \$2)) with labels boxed offset 0,-1.1 font ',9' tc rgb '$color' notitle")
    plots+=("'$dat' index $i using 3:5:(sprintf('%d', \$2)) with labels boxed offset 0,1.1 font ',9' tc rgb '$color' notitle")
  done
  if [ ${#plots[@]} -eq 0 ]; then
    echo "set label 'no results' at graph 0.5, graph 0.5 center"
    echo "set yrange [0.1:10]"
    echo "plot 1/0 notitle"
  else
    printf 'plot '
    for i in "${!plots[@]}"; do
      [ "$i" -gt 0 ] && printf ', \\\n     '
      printf '%s' "${plots[$i]}"
    done
    echo
  fi
} >"$gp"
if gnuplot "$gp" 2>"$tmp/gnuplot.err"; then
  log "wrote $png"
else
  log "gnuplot failed: $(head -3 "$tmp/gnuplot.err")"
fi

echo
echo "Command: \`$cmdline\`"
echo
echo "$cpu, $day, load before $load0; $members members, tickTime 2000 on both; ZooKeeper 3.8," \
  "$QFS_ZK_JVM; fresh ensemble per point, $warmup s warm-up, $duration s measured, medians of" \
  "$runs; $workload, 1 KiB values, $outstanding outstanding per session. Data: $dat, picture: $png."
echo
echo "| server | sessions | ops/s | p50 ms | p99 ms | p999 ms | CPU µs/op |"
echo "|---|--:|--:|--:|--:|--:|--:|"
grep -v '^#' "$dat" | awk 'NF == 7 {printf "| %s | %s | %s | %s | %s | %s | %s |\n", ($1 == "zk" ? "ZooKeeper 3.8" : "quorumfs"), $2, $3, $4, $5, $6, $7}'
