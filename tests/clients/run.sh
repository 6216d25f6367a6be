#!/usr/bin/env bash
# Every stock-client suite against one server kind; each suite gets its own private server.
#
#   run.sh zk        [""            [C_CLIENT_TEST]]   # Apache ZooKeeper 3.8 (the reference)
#   run.sh quorumfsd QUORUMFSD_PATH [C_CLIENT_TEST]
#
# Suites: kazoo (test_kazoo.py), the C client (c_client_test; skipped, saying so, when no binary
# is given) and zkCli.sh (zkcli_test.sh). Prints each suite's output, then a summary. Exit status
# 0 iff no suite failed. Environment: QFS_CLIENT_SUITES="kazoo c zkcli" picks suites;
# KAZOO_ARGS are passed to unittest (e.g. "-v" or "Watches").
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3  # the python that has python3-kazoo

usage() {
  echo "usage: $0 zk|quorumfsd [QUORUMFSD_PATH] [C_CLIENT_TEST_PATH]" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
kind=$1
qfsd=${2:-}
ctest=${3:-}
case "$kind" in
  zk) qfsd="" ;;
  quorumfsd)
    [ -n "$qfsd" ] || usage
    [ -x "$qfsd" ] || { echo "not executable: $qfsd" >&2; exit 2; }
    qfsd=$(realpath "$qfsd")
    ;;
  *) usage ;;
esac
suites=${QFS_CLIENT_SUITES:-kazoo c zkcli}

dir=$(mktemp -d /tmp/qfs-clients-run-XXXXXX)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
  fi
}
cleanup() {
  stop_server
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

declare -a summary=()
failed=0
record() {  # record SUITE STATUS DETAIL
  summary+=("$(printf '%-8s %-5s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && failed=1
  return 0
}

server_args=("$kind")
[ -n "$qfsd" ] && server_args+=("$qfsd")

run_kazoo() {
  echo "=== kazoo ($kind)"
  if ! "$PY" -c 'import kazoo' 2>/dev/null; then
    record kazoo FAIL "$PY cannot import kazoo (install python3-kazoo)"
    return
  fi
  local args=(--kind "$kind")
  [ -n "$qfsd" ] && args+=(--quorumfsd "$qfsd")
  # shellcheck disable=SC2086
  timeout -k 10 600 "$PY" "$here/test_kazoo.py" "${args[@]}" ${KAZOO_ARGS:-} 2>&1 |
    tee "$dir/kazoo.log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '^(Ran [0-9]+ tests|OK|FAILED)' "$dir/kazoo.log" | tr '\n' ' ')
  if [ "$rc" -eq 0 ]; then record kazoo PASS "$line"
  elif [ "$rc" -eq 124 ]; then record kazoo FAIL "timed out after 600 s"
  else record kazoo FAIL "$line"; fi
}

run_c() {
  echo "=== C client ($kind)"
  if [ -z "$ctest" ]; then
    echo "skip: no C_CLIENT_TEST_PATH given (build the c_client_test target)"
    record c SKIP "no c_client_test binary given"
    return
  fi
  if [ ! -x "$ctest" ]; then
    record c FAIL "not executable: $ctest"
    return
  fi
  "$PY" "$here/server.py" "${server_args[@]}" --tick 500 \
    --set znode.container.checkIntervalMs=200 >"$dir/c.server" 2>"$dir/c.server.err" &
  server_pid=$!
  for _ in $(seq 900); do
    [ -s "$dir/c.server" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$dir/c.server" ]; then
    cat "$dir/c.server.err"
    stop_server
    record c FAIL "$kind did not start"
    return
  fi
  local port
  port=$(cut -d' ' -f1 "$dir/c.server")
  timeout -k 10 180 "$ctest" "127.0.0.1:$port" 10000 2>"$dir/c.stderr" | tee "$dir/c.log"
  local rc=${PIPESTATUS[0]}
  stop_server
  local n_fail
  n_fail=$(grep -c '^FAIL' "$dir/c.log")
  if [ "$rc" -eq 0 ]; then record c PASS "$(tail -1 "$dir/c.log")"
  elif [ "$rc" -eq 124 ]; then record c FAIL "timed out after 180 s"
  else
    [ -s "$dir/c.stderr" ] && { echo "c_client_test stderr:"; sed 's/^/  | /' "$dir/c.stderr" | tail -20; }
    record c FAIL "exit $rc, $n_fail failed checks"
  fi
}

run_zkcli() {
  echo "=== zkCli.sh ($kind)"
  timeout -k 10 300 bash "$here/zkcli_test.sh" "${server_args[@]}" 2>&1 | tee "$dir/zkcli.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then record zkcli PASS "$(tail -1 "$dir/zkcli.log")"
  elif [ "$rc" -eq 124 ]; then record zkcli FAIL "timed out after 300 s"
  else record zkcli FAIL "$(tail -1 "$dir/zkcli.log")"; fi
}

for s in $suites; do
  case "$s" in
    kazoo) run_kazoo ;;
    c) run_c ;;
    zkcli) run_zkcli ;;
    *) echo "unknown suite '$s' in QFS_CLIENT_SUITES" >&2; record "$s" FAIL "unknown suite" ;;
  esac
done

echo
echo "=== summary: stock clients vs $kind${qfsd:+ ($qfsd)}"
for line in "${summary[@]}"; do echo "$line"; done
exit "$failed"
