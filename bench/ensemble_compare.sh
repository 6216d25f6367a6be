#!/usr/bin/env bash
# quorumfsd and Apache ZooKeeper 3.8 ensembles of 1, 3 and 5 members side by side: zkbench
# throughput and latency, failover time (kill -9 leader -> next acknowledged write) and the
# catch-up time of a follower that missed 1M znodes (SNAP) and then 100k txns (DIFF).
#
#   bench/ensemble_compare.sh --zkbench BUILD/bench/zkbench --quorumfsd BUILD/daemon/quorumfsd
#   bench/ensemble_compare.sh --zkbench BUILD/bench/zkbench --only zk --sizes 1,3 --no-catchup
#
# Ensembles come from scripts/ensemble (loopback, own ports and data dirs, tickTime=200 on both
# sides, ZooKeeper with forceSync=yes); each side and size runs alone and is stopped by PID.
# Progress on stderr; Markdown tables on stdout.
set -uo pipefail

usage() {
  cat <<'EOF2'
usage: ensemble_compare.sh --zkbench PATH [--quorumfsd PATH] [--only zk|quorumfs]
         [--sizes LIST] [--duration S] [--failover-rounds N] [--snap-nodes N] [--diff-txns N]
         [--no-catchup] [--no-failover] [--no-throughput] [--dir DIR]
  --sizes LIST         ensemble sizes (default 1,3,5)
  --duration S         measured seconds per zkbench run (default 5)
  --failover-rounds N  kill -9 leader rounds per size > 1 (default 5)
  --snap-nodes N       znodes a stopped follower misses before it restarts (default 1000000)
  --diff-txns N        txns it misses the second time (default 100000)
  --no-catchup         skip the catch-up measurement (done on 3 members only)
  --no-throughput      skip the zkbench runs
EOF2
  exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
zkbench="" qfsd="" only="" sizes="1,3,5" duration=5 rounds=5 snap_nodes=1000000
diff_txns=100000 catchup=1 failover=1 throughput=1 base_dir=""
cmdline="bench/ensemble_compare.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --zkbench) zkbench=${2:?}; shift ;;
    --quorumfsd) qfsd=${2:?}; shift ;;
    --only) only=${2:?}; shift ;;
    --sizes) sizes=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --failover-rounds) rounds=${2:?}; shift ;;
    --snap-nodes) snap_nodes=${2:?}; shift ;;
    --diff-txns) diff_txns=${2:?}; shift ;;
    --no-catchup) catchup=0 ;;
    --no-failover) failover=0 ;;
    --no-throughput) throughput=0 ;;
    --dir) base_dir=${2:?}; shift ;;
    -h | --help) usage ;;
    *) echo "ensemble_compare.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[ -n "$zkbench" ] && [ -x "$zkbench" ] || { echo "give --zkbench PATH" >&2; exit 2; }
zkbench=$(realpath "$zkbench")
if [ "$only" != zk ]; then
  [ -n "$qfsd" ] && [ -x "$qfsd" ] || { echo "give --quorumfsd PATH (or --only zk)" >&2; exit 2; }
  qfsd=$(realpath "$qfsd")
fi
sides=()
[ "$only" != quorumfs ] && sides+=(zk)
[ "$only" != zk ] && sides+=(qfs)
IFS=, read -r -a sz <<<"$sizes"
if [ -n "$base_dir" ]; then mkdir -p "$base_dir"; tmp=$(mktemp -d "$base_dir/ens-compare-XXXXXX")
else tmp=$(mktemp -d /tmp/qfs-ens-compare-XXXXXX); fi
ens=/usr/bin/python3
ensemble() { "$ens" "$repo/tests/ensemble/ensemble.py" --dir "$cur" "$@"; }
cur=""
cleanup() {
  [ -n "$cur" ] && [ -f "$cur/state.json" ] && ensemble stop >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "ensemble_compare: $*" >&2; }
both() { while IFS= read -r l; do echo "$l" >&2; echo "$l"; done; }  # stdout and stderr
export QFS_ZK_HEAP=${QFS_ZK_HEAP:-2g}

declare -A res
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# name workload clients outstanding
runs=("create-16x32 create 16 32" "get-16x32 get 16 32" "create-1x1 create 1 1")

start_side() {  # start_side SIDE N
  cur="$tmp/$1-$2"
  local args=(start "$2" --dir "$cur" --timeout 180)
  [ "$1" = zk ] && args+=(--zookeeper) || args+=(--quorumfsd "$qfsd")
  ensemble "${args[@]}" >&2
}

for side in "${sides[@]}"; do
  for n in "${sz[@]}"; do
    log "$side: $n member(s)"
    if ! start_side "$side" "$n"; then
      log "$side $n: did not start"; ensemble stop >/dev/null 2>&1; cur=""; continue
    fi
    servers=$(ensemble connect-string)
    [ "$throughput" = 1 ] && { timeout -k 10 --signal=INT 120 "$zkbench" -s "$servers" -w mixed \
      -c 4 -o 16 -d 3 --warmup 0 >/dev/null 2>&1 || log "$side $n: warm-up run failed"; }
    for r in "${runs[@]}"; do
      [ "$throughput" = 1 ] || break
      read -r name w c o <<<"$r"
      line=$(timeout -k 30 --signal=INT $((${duration%.*} + 180)) "$zkbench" -s "$servers" \
        -w "$w" -c "$c" -o "$o" -d "$duration" --warmup 1 -b 1024 -n 1000 2>"$tmp/err" |
        grep '^RESULT ')
      if [ -z "$line" ]; then log "$side $n $name failed: $(tail -2 "$tmp/err" | tr '\n' ' ')"; continue; fi
      log "$side $n $name: $line"
      for f in ops_per_sec p50_ms p99_ms; do
        res[$side,$n,$name,$f]=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$f=//p")
      done
    done
    if [ "$failover" = 1 ] && [ "$n" -gt 1 ]; then
      line=$("$ens" "$here/failover.py" --dir "$cur" --rounds "$rounds" | both | grep '^RESULT ')
      for f in failover_median_s failover_max_s election_median_s; do
        res[$side,$n,fo,$f]=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$f=//p")
      done
    fi
    if [ "$catchup" = 1 ] && [ "$n" = 3 ]; then
      for phase in snap:$snap_nodes diff:$diff_txns; do
        k=${phase%%:*} cnt=${phase#*:}
        line=$("$ens" "$here/catchup.py" --dir "$cur" --zkbench "$zkbench" --nodes "$cnt" \
          --bytes 100 | both | grep '^RESULT ')
        for f in catchup_s serving_s sync load_s no_leader_s; do
          res[$side,$k,$f]=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$f=//p")
        done
      done
    fi
    ensemble stop >&2
    cur=""
  done
done

g() { echo "${res[$1]:-–}"; }
echo
echo "Command: \`$cmdline\`"
echo
echo "tickTime=200 on both sides; ZooKeeper 3.8 with forceSync=yes, heap $QFS_ZK_HEAP; 1 KiB" \
  "values, 1000 keys for get; $duration s measured per run after a 1 s warm-up; clients" \
  "connect to every member; $(nproc) CPUs (load average before: $load0); all on one host over loopback."
echo
echo "| members | run | ZK ops/s | ZK p50 ms | ZK p99 ms | quorumfs ops/s | quorumfs p50 ms | quorumfs p99 ms |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|"
for n in "${sz[@]}"; do
  for r in "${runs[@]}"; do
    read -r name _ <<<"$r"
    echo "| $n | $name | $(g zk,$n,$name,ops_per_sec) | $(g zk,$n,$name,p50_ms) | $(g zk,$n,$name,p99_ms) | $(g qfs,$n,$name,ops_per_sec) | $(g qfs,$n,$name,p50_ms) | $(g qfs,$n,$name,p99_ms) |"
  done
done
if [ "$failover" = 1 ]; then
  echo
  echo "Failover, kill -9 of the leader under 2 writers ($rounds rounds): median / max time to the next acknowledged write, median time to a new leader."
  echo
  echo "| members | ZK write median s | ZK max s | ZK new leader s | quorumfs write median s | quorumfs max s | quorumfs new leader s |"
  echo "|--:|--:|--:|--:|--:|--:|--:|"
  for n in "${sz[@]}"; do
    [ "$n" -gt 1 ] || continue
    echo "| $n | $(g zk,$n,fo,failover_median_s) | $(g zk,$n,fo,failover_max_s) | $(g zk,$n,fo,election_median_s) | $(g qfs,$n,fo,failover_median_s) | $(g qfs,$n,fo,failover_max_s) | $(g qfs,$n,fo,election_median_s) |"
  done
fi
if [ "$catchup" = 1 ]; then
  echo
  echo "Catch-up on 3 members: a stopped follower misses N znodes of 100 B, is started again; seconds from its start to serving and to the leader's last zxid; how the leader synced it; seconds the other two had no serving leader meanwhile."
  echo
  echo "| missed | ZK serving s | ZK caught up s | ZK sync | ZK no leader s | quorumfs serving s | quorumfs caught up s | quorumfs sync | quorumfs no leader s |"
  echo "|---|--:|--:|---|--:|--:|--:|---|--:|"
  echo "| $snap_nodes znodes | $(g zk,snap,serving_s) | $(g zk,snap,catchup_s) | $(g zk,snap,sync) | $(g zk,snap,no_leader_s) | $(g qfs,snap,serving_s) | $(g qfs,snap,catchup_s) | $(g qfs,snap,sync) | $(g qfs,snap,no_leader_s) |"
  echo "| $diff_txns txns (after those) | $(g zk,diff,serving_s) | $(g zk,diff,catchup_s) | $(g zk,diff,sync) | $(g zk,diff,no_leader_s) | $(g qfs,diff,serving_s) | $(g qfs,diff,catchup_s) | $(g qfs,diff,sync) | $(g qfs,diff,no_leader_s) |"
fi
