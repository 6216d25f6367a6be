# Helpers for the FUSE view's shell tests. Source it; then:
#   qfs_start NAME [KEY=VALUE...]   starts quorumfsd (tickTime 500) mounted on $QFS_TMP/NAME/mnt;
#                                   sets MNT_<NAME>, PID_<NAME>, PORT_<NAME>, LOG_<NAME>
#   qfs_stop NAME                   SIGTERM by PID, waits (bounded), checks the mount is gone
#   qfs_kill9 NAME                  SIGKILL by PID (leaves a stale mount)
#   check DESC CMD...               runs CMD; counts a failure (and prints it) if it fails
#   fail DESC                       counts a failure
#   finish                          prints the summary; exit status 1 if anything failed
# Every daemon and every mount is cleaned up on exit (by PID; mounts with a lazy unmount).
set -u
QFSD=${QUORUMFSD:+$(realpath "$QUORUMFSD")}  # needed by qfs_start only
PY=/usr/bin/python3
QFS_TMP=$(mktemp -d /tmp/qfs-fuse-test-XXXXXX)
declare -A QFS_PIDS=()
declare -a QFS_MOUNTS=()
declare -a QFS_BG=()
FAILS=0
CHECKS=0

# qfs_tree PID...: the PIDs and all their descendants (collected before any is signalled: an
# orphan is re-parented and could no longer be found, and it may hold our output pipe open).
qfs_tree() {
  local p
  for p in "$@"; do
    kill -0 "$p" 2>/dev/null || continue
    echo "$p"
    # shellcheck disable=SC2046
    qfs_tree $(pgrep -P "$p")
  done
}

qfs_cleanup() {
  local p tree
  # TERM first: the recipes' exit traps release their nodes and stop their inotifywait.
  tree=$(qfs_tree "${QFS_BG[@]}")
  for p in $tree; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in $tree $(qfs_tree $tree); do kill -KILL "$p" 2>/dev/null; done
  for p in "${QFS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${QFS_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for m in "${QFS_MOUNTS[@]}"; do
    if grep -q " $m fuse" /proc/mounts 2>/dev/null; then umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null; fi
  done
  if [ -n "${QFS_KEEP:-}" ]; then echo "kept $QFS_TMP"; else rm -rf "$QFS_TMP"; fi
}
trap qfs_cleanup EXIT
trap 'exit 1' INT TERM HUP

# qfs_start NAME [KEY=VALUE...]: a private quorumfsd with its own data dir and mount.
qfs_start() {
  local name=$1; shift
  [ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
  local d=$QFS_TMP/$name
  mkdir -p "$d/data"
  if [ ! -f "$d/zoo.cfg" ]; then
    {
      echo "dataDir=$d/data"
      echo "clientPort=0"
      echo "tickTime=500"
      echo "minSessionTimeout=1000"
      echo "maxSessionTimeout=20000"
      echo "mount=$d/mnt"
      echo "mount.sessionTimeoutMs=2000"
      echo "mount.writeTimeoutMs=3000"
      for kv in "$@"; do echo "$kv"; done
    } >"$d/zoo.cfg"
  fi
  local before
  before=$(grep -c "mounted the tree on" "$d/log" 2>/dev/null)
  before=${before:-0}
  "$QFSD" "$d/zoo.cfg" >>"$d/log" 2>&1 &
  local pid=$!
  QFS_PIDS[$name]=$pid
  QFS_MOUNTS+=("$d/mnt")
  local ok=""
  for _ in $(seq 200); do
    if [ "$(grep -c "mounted the tree on" "$d/log" 2>/dev/null)" -gt "$before" ]; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$ok" ]; then
    echo "quorumfsd $name did not mount:"; tail -20 "$d/log"; exit 1
  fi
  # The port of this run (logged at start).
  local port
  port=$(grep -o 'serving on [0-9.]*:[0-9]*' "$d/log" | tail -1 | sed 's/.*://')
  printf -v "MNT_$name" '%s' "$d/mnt"
  printf -v "PID_$name" '%s' "$pid"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "LOG_$name" '%s' "$d/log"
  # Lines of this run only start after this mark.
  echo "== started pid $pid" >>"$d/log"
}

qfs_stop() {
  local name=$1 pid=${QFS_PIDS[$1]}
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then fail "quorumfsd $name did not stop within 10 s"; kill -KILL "$pid"; fi
  wait "$pid" 2>/dev/null
  unset "QFS_PIDS[$name]"
}

qfs_kill9() {
  local name=$1 pid=${QFS_PIDS[$1]}
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "QFS_PIDS[$name]"
}

fail() {
  FAILS=$((FAILS + 1))
  echo "FAIL: $*"
}

check() {
  local desc=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $desc"; else fail "$desc"; fi
}

# errno_of CMD...: runs CMD, prints the error message part of its stderr ("" on success).
msg_of() { "$@" 2>&1 >/dev/null | sed 's/.*: //' | head -1; }

# Waits until CMD succeeds, at most SECONDS (polls every 10 ms).
wait_for() {
  local secs=$1; shift
  local n=$((secs * 100))
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.01; done
  return 1
}

# check_sigint_mkdir DIR: on a mount whose writes block (no quorum, stalled disk), SIGINT must
# interrupt a blocked mkdir: EINTR for a process that handles the signal, and at once for a
# shell's mkdir. Prints the python probe's line.
check_sigint_mkdir() {
  local dir=$1 py
  "$PY" - "$dir/interrupted" <<'PYEOF' >"$QFS_TMP/intr.out" 2>&1 &
import ctypes, errno, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGINT, lambda *a: None)  # like a shell's Ctrl-C, but we see the errno
t0 = time.monotonic()
rc = libc.mkdir(sys.argv[1].encode(), 0o755)
e = ctypes.get_errno()
print("rc=%d errno=%s after %.0f ms" % (rc, errno.errorcode.get(e, e), (time.monotonic() - t0) * 1000))
PYEOF
  py=$!
  QFS_BG+=("$py")
  sleep 1
  kill -INT "$py"
  wait_for 3 sh -c "! kill -0 $py 2>/dev/null"
  echo "     $(cat "$QFS_TMP/intr.out")"
  check "Ctrl-C (SIGINT) interrupts a blocked mkdir with EINTR" grep -q "rc=-1 errno=EINTR" "$QFS_TMP/intr.out"
  timeout -s INT 1 mkdir "$dir/shell-interrupted" 2>/dev/null
  check "  a shell's mkdir killed by SIGINT returns at once (exit 124 from timeout)" test $? -eq 124
}

finish() {
  echo "== $CHECKS checks, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
