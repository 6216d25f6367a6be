#!/usr/bin/env bash
# The FUSE view's figures (BENCHMARKS.md): the same operations through quorumfs's mount, through
# memfs (a trivial in-memory FUSE filesystem: the FUSE round-trip limit), on tmpfs, and the
# matching operations through the client port (zkbench); then the change-to-inotify delay.
#   bench/fuse_bench.sh BUILD_DIR [SECONDS]      (BUILD_DIR: a release build with quorumfsd,
#                                                 memfs and zkbench)
set -u
b=$(realpath "${1:?usage: fuse_bench.sh BUILD_DIR [SECONDS]}")
secs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/qfs-fuse-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for m in "$tmp/q" "$tmp/mem"; do grep -q " $m fuse" /proc/mounts && umount -l "$m"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/data" "$tmp/mem" "$tmp/shm"
start_q() {
  "$b/daemon/quorumfsd" --data-dir "$tmp/data" --client-port 0 --mount "$tmp/q" >>"$tmp/q.log" 2>&1 &
  qpid=$!
  pids+=($qpid)
  for _ in $(seq 100); do [ "$(grep -c 'mounted the tree' "$tmp/q.log")" -ge "$1" ] && break; sleep 0.05; done
  port=$(grep -o 'serving on [0-9.]*:[0-9]*' "$tmp/q.log" | tail -1 | sed 's/.*://')
}
start_q 1
"$b/bench/memfs" "$tmp/mem" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q " $tmp/mem fuse" /proc/mounts && break; sleep 0.05; done
mount -t tmpfs none "$tmp/shm" 2>/dev/null || { echo "using /dev/shm"; }
shm=$tmp/shm
grep -q " $shm tmpfs" /proc/mounts || shm=$(mktemp -d /dev/shm/qfs-bench-XXXXXX)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), libfuse $(pkg-config --modversion fuse3)"
echo "one process, one operation at a time, ${secs}s each; columns: ops/s p50_us p99_us"
for target in "quorumfs:$tmp/q" "memfs:$tmp/mem" "tmpfs:$shm"; do
  echo "-- ${target%%:*}"
  $PY "$here/fuse_bench.py" "${target#*:}" --seconds "$secs"
done
echo "-- quorumfs cat_uncached (2000 distinct files, first read after a remount)"
$PY "$here/fuse_bench.py" "$tmp/q" --prepare 2000
kill -TERM "$qpid"; wait "$qpid" 2>/dev/null
start_q 2
$PY "$here/fuse_bench.py" "$tmp/q" --ops cat_uncached
echo "-- the client port (zkbench, 1 client x 1 outstanding, 100-byte values)"
for w in get set create; do
  printf '%-8s ' "$w"
  "$b/bench/zkbench" -s "127.0.0.1:$port" -w "$w" -c 1 -o 1 -d "$secs" -b 100 2>&1 | tail -1
done
echo "-- change-to-inotify delay (tests/fuse/watch_test.py)"
$PY "$here/../tests/fuse/watch_test.py" --mount-a "$tmp/q" --hosts "127.0.0.1:$port" | grep -A12 "delay per event"
[ "$shm" = "$tmp/shm" ] && umount "$shm" || rm -rf "$shm"
