#!/usr/bin/env bash
# quorumfsd against damaged logs, as a user would meet them:
#   - a torn last record is truncated with a log line and the daemon starts;
#   - a flipped byte in the middle of the log stops it with a message naming the file and offset.
set -euo pipefail
quorumfsd=$1
writer=$2
dir=$(mktemp -d /tmp/qfs-recovery-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 "$(dirname "$0")/../clients/ports.py") # outside the ephemeral range; see ports.py
cat > "$dir/zoo.cfg" <<CFG
dataDir=$dir/data
dataLogDir=$dir/log
clientPort=$port
snapCount=1000000
CFG

fail() { echo "FAIL: $*"; exit 1; }

four() {  # four-letter word over bash's /dev/tcp
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf '%s' "$1" >&3
  timeout 5 cat <&3
  exec 3<&-
}

start() {  # start quorumfsd, wait until it serves; sets $pid
  "$quorumfsd" "$dir/zoo.cfg" 2>"$dir/stderr" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    grep -q "serving on" "$dir/stderr" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

stop() {
  kill -TERM "$pid"
  timeout 20 tail --pid="$pid" -f /dev/null || fail "quorumfsd did not stop on SIGTERM"
  wait "$pid" || fail "quorumfsd exited with an error on SIGTERM"
  grep -q "stopped cleanly" "$dir/stderr" || fail "no clean-shutdown line"
}

zxid() { four srvr | sed -n 's/^Zxid: //p'; }

# Some history in the log, written through the real pipeline.
"$writer" --dir "$dir" --seconds 1 --threads 4 --snap-count 1000000 >/dev/null
start || { cat "$dir/stderr"; fail "quorumfsd did not start on a clean log"; }
[ "$(four ruok)" = imok ] || fail "ruok"
before=$(zxid)
echo "clean start at zxid $before"
stop

last=$(ls "$dir/log"/log.* | sort | tail -n 1)
first=$(ls "$dir/log"/log.* | sort | head -n 1)
end=$(python3 - "$last" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
print(len(d.rstrip(b'\0')))
PY
)

# 1. Torn tail: the last record loses its last bytes.
python3 - "$last" "$end" <<'PY'
import sys
path, end = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(end - 5)
    f.write(b'\0' * 5)
PY
start || { cat "$dir/stderr"; fail "quorumfsd did not start after a torn tail"; }
grep -qi "torn" "$dir/stderr" || { cat "$dir/stderr"; fail "no log line about the torn tail"; }
after=$(zxid)
echo "after a torn tail: zxid $after (was $before)"
[ $((after)) -eq $((before - 1)) ] || fail "expected exactly the torn record to be dropped"
stop

# 2. A flipped byte in the middle of the first segment: refuse to start, say where.
python3 - "$first" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
end = len(d.rstrip(b'\0'))
d[end // 2] ^= 0x40
open(path, 'wb').write(d)
PY
"$quorumfsd" "$dir/zoo.cfg" 2>"$dir/stderr" &
pid=$!
pids+=("$pid")
if timeout 30 tail --pid="$pid" -f /dev/null; then :; else fail "quorumfsd kept running on a corrupt log"; fi
if wait "$pid"; then fail "quorumfsd exited 0 on a corrupt log"; fi
cat "$dir/stderr"
grep -q "$(basename "$first")" "$dir/stderr" || fail "the message does not name the file"
grep -qi "offset" "$dir/stderr" || fail "the message does not name the offset"
echo "recovery_cli_test: ok"
