# shellcheck shell=bash
# The run of one zkbench case against a fresh ensemble, shared by bench/speed_compare.sh and
# bench/plot_latency.sh (sourced, not run). The protocol of BENCHMARKS.md "Side by side with
# ZooKeeper": tickTime 2000 on both sides, ZooKeeper with G1 and a pre-touched 1 GiB heap, a
# fresh 1/3/5-member ensemble on loopback per run, WARMUP s of load then DURATION s measured.
#
# The caller sets zkbench, qfsd (absolute paths), warmup, duration and out ("" = a temp dir),
# then calls speed_init NAME; run_one appends "side n name RESULT... cpu_us_per_op=N" to $raw.
# Every ensemble is stopped by its `stop` (pids checked against their start times), zkbench
# runs under `timeout`, and the EXIT/INT/TERM traps clean up whatever is still running.
# shellcheck disable=SC2154  # zkbench, qfsd, warmup, duration and out are the caller's

speed_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
speed_repo=$(dirname "$speed_here")
export QFS_ZK_JVM="-Xms1g -Xmx1g -XX:+UseG1GC -XX:+AlwaysPreTouch"
hz=$(getconf CLK_TCK)
cur=""
bench_pid=""
tmp=""
speed_name=speed

ens() { /usr/bin/python3 "$speed_repo/tests/ensemble/ensemble.py" --dir "$cur" "$@"; }
log() { echo "$speed_name: $*" >&2; }
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
# Sum of qfs_allocations (mntr) over CONNECT-STRING's members; empty for ZooKeeper or a build
# without jemalloc.
allocations() {
  local hp t=0 v
  for hp in ${1//,/ }; do
    v=$({ exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}" && printf mntr >&3 && timeout 5 cat <&3; exec 3<&-; } 2>/dev/null |
      sed -n 's/^qfs_allocations\t//p')
    [ -n "$v" ] && [ "$v" -ge 0 ] || return 0
    t=$((t + v))
  done
  echo "$t"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "–"; else print a[int((NR+1)/2)]}'; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

speed_cleanup() {
  [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null
  [ -n "$cur" ] && [ -f "$cur/state.json" ] && ens stop >/dev/null 2>&1
  [ -n "$tmp" ] && [ "$out" != "$tmp" ] && rm -rf "$tmp"
}

speed_init() {  # NAME: temp dir, $out, $raw (emptied), traps
  speed_name=$1
  tmp=$(mktemp -d "/tmp/qfs-$1-XXXXXX")
  out=${out:-$tmp}; mkdir -p "$out"; raw="$out/raw.txt"; : >"$raw"
  trap speed_cleanup EXIT
  trap 'exit 130' INT TERM
}

run_one() {  # side n name workload clients outstanding target
  local side=$1 n=$2 name=$3 w=$4 c=$5 o=$6 target=${7:-}
  cur="$tmp/$side-$n-$name"; rm -rf "$cur"
  local args=(start "$n" --tick 2000 --timeout 180)
  [ "$side" = zk ] && args+=(--zookeeper) || args+=(--quorumfsd "$qfsd")
  if ! ens "${args[@]}" >/dev/null 2>"$tmp/start.err"; then
    log "$side $n $name: ensemble did not start: $(tail -1 "$tmp/start.err")"; ens stop >/dev/null 2>&1; cur=""; return
  fi
  local pids servers lid
  pids=$(ens pids | awk '{print $2}' | tr '\n' ' ')
  servers=$(ens connect-string)
  local all=$servers
  if [ -n "$target" ] && [ "$n" -gt 1 ]; then
    lid=$(ens leader)
    local port
    port=$(ens status | awk -v l="$lid" -v t="$target" '{split($4, a, "="); if ((t == "leader") == ($1 == l)) {print a[2]; exit}}')
    servers="127.0.0.1:$port"
  fi
  if grep -qvE '^127(\.[0-9]+){3}:[0-9]+$' <<<"${servers//,/$'\n'}"; then
    log "$side $n $name: not loopback: $servers"; ens stop >/dev/null 2>&1; cur=""; return
  fi
  # Setup (1000 keys) and the final delete of what was created are outside the measured
  # window; 300 s more than warm-up + duration is ample for both and still bounds a hang.
  local limit
  limit=$(awk -v w="$warmup" -v d="$duration" 'BEGIN {printf "%d", w + d + 300}')
  local fifo="$tmp/fifo"; rm -f "$fifo"; mkfifo "$fifo"
  timeout -k 10 "$limit" "$zkbench" -s "$servers" -w "$w" -c "$c" -o "$o" -d "$duration" \
    --warmup "$warmup" -b 1024 -n 1000 >"$tmp/res" 2>"$fifo" &
  bench_pid=$!
  local c0="" c1="" a0="" a1="" line
  while IFS= read -r line; do
    case "$line" in
      "MEASURE start") c0=$(cpu_ticks "$pids"); [ "$side" = qfs ] && a0=$(allocations "$all") ;;
      "MEASURE end") c1=$(cpu_ticks "$pids"); [ "$side" = qfs ] && a1=$(allocations "$all") ;;
    esac
  done <"$fifo"
  local rc=0
  wait "$bench_pid" || rc=$?
  bench_pid=""
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && log "$side $n $name: zkbench killed after $limit s"
  line=$(grep '^RESULT ' "$tmp/res")
  ens stop >/dev/null 2>&1; cur=""
  if [ -z "$line" ] || [ -z "$c0" ] || [ -z "$c1" ]; then log "$side $n $name: no result"; return; fi
  local ops us
  ops=$(field "$line" ops)
  us=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v ops="$ops" 'BEGIN {printf "%.0f", ops ? d / hz * 1e6 / ops : 0}')
  local allocs=""
  [ -n "$a0" ] && [ -n "$a1" ] && allocs=$(awk -v d=$((a1 - a0)) -v ops="$ops" 'BEGIN {printf "%.1f", ops ? d / ops : 0}')
  echo "$side $n $name $line cpu_us_per_op=$us${allocs:+ allocs_per_op=$allocs}" >>"$raw"
  log "$side $n $name: $(field "$line" ops_per_sec) ops/s p50 $(field "$line" p50_ms) p99 $(field "$line" p99_ms) ms, $us µs CPU/op,${allocs:+ $allocs allocations/op (all members),} sessions $(field "$line" sess_min)..$(field "$line" sess_max)"
}
