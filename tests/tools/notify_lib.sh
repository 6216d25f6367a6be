# Sourced by the tools tests: a stand-in for systemd's side of sd_notify (docs/install.md).
# Needs the caller's `pids` array (killed by its cleanup) and `fail`.
notify_listen() {  # notify_listen SOCKET OUT: receive sd_notify datagrams until READY=1
  /usr/bin/python3 - "$1" "$2" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.settimeout(60)
with open(sys.argv[2], "w") as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m + "\n")
        out.flush()
        if "READY=1" in m.split("\n"):
            break
PY
  notify_pid=$!
  pids+=("$notify_pid")
  for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done
  fail "notify listener did not start"
}
