#!/usr/bin/env bash
# Apache ZooKeeper 3.8 and quorumfsd side by side under the same zkbench workloads.
#
#   bench/compare.sh --zkbench BUILD/bench/zkbench --quorumfsd BUILD/daemon/quorumfsd
#   bench/compare.sh --zkbench BUILD/bench/zkbench --only zk --quick
#
# Each server is started here on loopback with its own config and data dir under a temp dir,
# benchmarked alone (the other is stopped, so they never share the CPUs), and stopped by PID.
# Progress goes to stderr; a Markdown table to stdout: throughput ratio quorumfs/ZooKeeper, latency
# ratio ZooKeeper/quorumfs (so > 1 means quorumfs is better in both).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: compare.sh --zkbench PATH [--quorumfsd PATH] [--only zk|quorumfs] [--members 1|3]
                  [--duration SECONDS | --quick] [--workloads LIST] [--shapes LIST]
                  [--bytes N] [--keys N] [--force-sync yes|no] [--dir DIR]

  --zkbench PATH      the zkbench binary (default: the first of build*/bench/zkbench)
  --quorumfsd PATH    the quorumfsd binary (one member); needed unless --only zk
  --only zk|quorumfs  benchmark one side only
  --members 1|3       ZooKeeper ensemble size (default 3)
  --duration SECONDS  measured time per run (default 10); --quick: 2 s
  --workloads LIST    default create,set,get,mixed,ephemeral,session
  --shapes LIST       CLIENTSxOUTSTANDING, default 1x1,16x32
  --bytes N           value size (default 1024); --keys N: keys for set/get/mixed (1000)
  --force-sync yes|no ZooKeeper's forceSync (default yes: fsync every log write)
  --dir DIR           where data dirs go (default a new temp dir, removed at the end)
EOF
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
zkbench="" qfsd="" only="" members=3 duration=10 warmup=1 bytes=1024 keys=1000 force_sync=yes
workloads="create,set,get,mixed,ephemeral,session"
shapes="1x1,16x32"
base_dir=""
cmdline="bench/compare.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --zkbench) zkbench=${2:?}; shift ;;
    --quorumfsd) qfsd=${2:?}; shift ;;
    --only) only=${2:?}; shift ;;
    --members) members=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --quick) duration=2 warmup=0.5 ;;
    --workloads) workloads=${2:?}; shift ;;
    --shapes) shapes=${2:?}; shift ;;
    --bytes) bytes=${2:?}; shift ;;
    --keys) keys=${2:?}; shift ;;
    --force-sync) force_sync=${2:?}; shift ;;
    --dir) base_dir=${2:?}; shift ;;
    -h | --help) usage ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
case "$only" in "" | zk | quorumfs) ;; *) echo "compare.sh: --only zk or quorumfs" >&2; exit 2 ;; esac
case "$members" in 1 | 3) ;; *) echo "compare.sh: --members 1 or 3" >&2; exit 2 ;; esac
case "$force_sync" in yes | no) ;; *) echo "compare.sh: --force-sync yes or no" >&2; exit 2 ;; esac
if [ -z "$zkbench" ]; then
  for c in "$repo"/build*/bench/zkbench "$repo"/build/*/bench/zkbench; do
    [ -x "$c" ] && zkbench=$c && break
  done
fi
[ -n "$zkbench" ] && [ -x "$zkbench" ] || { echo "compare.sh: no zkbench; give --zkbench PATH" >&2; exit 2; }
if [ "$only" != zk ]; then
  [ -n "$qfsd" ] && [ -x "$qfsd" ] ||
    { echo "compare.sh: give --quorumfsd PATH (or --only zk)" >&2; exit 2; }
fi
sides=()
[ "$only" != quorumfs ] && sides+=(zk)
[ "$only" != zk ] && sides+=(qfs)
IFS=, read -r -a wl <<<"$workloads"
IFS=, read -r -a sh <<<"$shapes"

if [ -n "$base_dir" ]; then
  mkdir -p "$base_dir"
  tmp=$(mktemp -d "$base_dir/compare-XXXXXX")
else
  tmp=$(mktemp -d /tmp/qfs-compare-XXXXXX)
fi
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    timeout 15 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 "$repo/tests/clients/ports.py"  # outside the ephemeral range; see ports.py
}
four() {  # four PORT WORD
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  printf '%s' "$2" >&3
  timeout 5 cat <&3
  exec 3<&-
}
log() { echo "compare: $*" >&2; }

# Starts ZooKeeper (1 or 3 members); sets $servers.
start_zk() {
  local i cports=() qports=() eports=()
  for i in $(seq "$members"); do
    cports+=("$(free_port)") qports+=("$(free_port)") eports+=("$(free_port)")
  done
  servers=""
  for i in $(seq "$members"); do
    local d="$tmp/zk$i"
    mkdir -p "$d/data"
    echo "$i" >"$d/data/myid"
    cat >"$d/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=${cports[i - 1]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
maxClientCnxns=0
forceSync=$force_sync
CFG
    if [ "$members" -gt 1 ]; then
      for j in $(seq "$members"); do
        echo "server.$j=127.0.0.1:${qports[j - 1]}:${eports[j - 1]}" >>"$d/zoo.cfg"
      done
    fi
    java -Xms512m -Xmx1g -cp /usr/share/java/zookeeper.jar \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >"$d/server.log" 2>&1 &
    pids+=($!)
    servers+="${servers:+,}127.0.0.1:${cports[i - 1]}"
  done
  local deadline=$((SECONDS + 120)) modes
  while [ $SECONDS -lt $deadline ]; do
    modes=""
    for p in "${cports[@]}"; do modes+="$(four "$p" srvr | sed -n 's/^Mode: //p') "; done
    if [ "$members" -eq 1 ] && [ "$modes" = "standalone " ]; then return 0; fi
    if [ "$members" -gt 1 ] && [ "$(grep -o leader <<<"$modes" | wc -l)" -eq 1 ] &&
      [ "$(grep -o follower <<<"$modes" | wc -l)" -eq $((members - 1)) ]; then
      log "ZooKeeper ensemble up: $modes"
      return 0
    fi
    sleep 0.5
  done
  log "ZooKeeper did not come up (modes: $modes); logs in $tmp/zk*/server.log"
  return 1
}

start_qfs() {
  local port d="$tmp/qfs"
  port=$(free_port)
  mkdir -p "$d/data"
  cat >"$d/zoo.cfg" <<CFG
dataDir=$d/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
CFG
  "$qfsd" "$d/zoo.cfg" >"$d/server.log" 2>&1 &
  pids+=($!)
  servers="127.0.0.1:$port"
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(four "$port" ruok)" = imok ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  log "quorumfsd did not come up; its log:"
  tail -20 "$d/server.log" >&2
  return 1
}

declare -A res
load0=$(cut -d' ' -f1-3 /proc/loadavg)
run_side() {  # run_side SIDE: the whole matrix against the running server
  local side=$1 w s c o line f
  for w in "${wl[@]}"; do
    for s in "${sh[@]}"; do
      c=${s%x*} o=${s#*x}
      line=$(timeout -k 30 --signal=INT $((${duration%.*} + 180)) "$zkbench" -s "$servers" \
        -w "$w" -c "$c" -o "$o" -d "$duration" --warmup "$warmup" -b "$bytes" -n "$keys" \
        2>"$tmp/bench.err" | grep '^RESULT ')
      if [ -z "$line" ]; then
        log "$side $w $s: zkbench failed: $(tail -3 "$tmp/bench.err" | tr '\n' ' ')"
        res[$side,$w,$s,ok]=0
        continue
      fi
      log "$side: $line"
      res[$side,$w,$s,ok]=1
      for f in ops_per_sec p50_ms p99_ms p999_ms errors; do
        res[$side,$w,$s,$f]=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$f=//p")
      done
    done
  done
}

for side in "${sides[@]}"; do
  if [ "$side" = zk ]; then
    log "starting ZooKeeper ($members member(s), forceSync=$force_sync)"
    start_zk || exit 1
  else
    log "starting quorumfsd ($qfsd)"
    start_qfs || exit 1
  fi
  # A fresh JVM runs cold: an unreported run first, the same for both sides.
  timeout -k 10 --signal=INT 120 "$zkbench" -s "$servers" -w mixed -c 4 -o 16 -d 3 \
    --warmup 0 -b "$bytes" -n "$keys" >/dev/null 2>&1 || log "$side: warm-up run failed"
  run_side "$side"
  stop_all
done

get() { [ "${res[$1,$2,$3,ok]:-0}" = 1 ] && echo "${res[$1,$2,$3,$4]}" || echo "–"; }
ratio() {  # ratio NUM DEN
  if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($2 > 0)}"; then
    awk "BEGIN{printf \"%.2f×\", $1 / $2}"
  else
    echo "–"
  fi
}
ops() { [[ $1 =~ ^[0-9.]+$ ]] && printf '%.0f' "$1" || echo "$1"; }

echo
echo "Command: \`$cmdline\`"
echo
who=""
[ "$only" != quorumfs ] && who="ZooKeeper 3.8: $members member(s), forceSync=$force_sync. "
[ "$only" != zk ] && who+="quorumfsd: 1 member. "
echo "${who}Values $bytes B, $keys keys, $duration s measured per run after a $warmup s" \
  "warm-up (and one unreported 3 s run per server first); $(nproc) CPUs (load average before the runs: $load0), $(df -T "$tmp" |
    awk 'NR==2{print $2}') data dirs, clients and servers on one host over loopback."
echo
if [ ${#sides[@]} -eq 2 ]; then
  echo "| workload | clients×outstanding | ZK ops/s | quorumfs ops/s | ratio | ZK p50 ms | quorumfs p50 ms | ratio | ZK p99 ms | quorumfs p99 ms | ratio | ZK p999 ms | quorumfs p999 ms | ratio | errors ZK / quorumfs |"
  echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  for w in "${wl[@]}"; do
    for s in "${sh[@]}"; do
      zo=$(get zk "$w" "$s" ops_per_sec) qo=$(get qfs "$w" "$s" ops_per_sec)
      row="| $w | ${s/x/×} | $(ops "$zo") | $(ops "$qo") | $(ratio "$qo" "$zo")"
      for f in p50_ms p99_ms p999_ms; do
        zl=$(get zk "$w" "$s" $f) ql=$(get qfs "$w" "$s" $f)
        row+=" | $zl | $ql | $(ratio "$zl" "$ql")"
      done
      row+=" | $(get zk "$w" "$s" errors) / $(get qfs "$w" "$s" errors) |"
      echo "$row"
    done
  done
else
  side=${sides[0]}
  name=ZooKeeper
  [ "$side" = qfs ] && name=quorumfs
  echo "| workload | clients×outstanding | $name ops/s | p50 ms | p99 ms | p999 ms | errors |"
  echo "|---|---|--:|--:|--:|--:|--:|"
  for w in "${wl[@]}"; do
    for s in "${sh[@]}"; do
      echo "| $w | ${s/x/×} | $(ops "$(get "$side" "$w" "$s" ops_per_sec)") | $(get "$side" "$w" "$s" p50_ms) | $(get "$side" "$w" "$s" p99_ms) | $(get "$side" "$w" "$s" p999_ms) | $(get "$side" "$w" "$s" errors) |"
    done
  done
fi
