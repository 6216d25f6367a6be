#!/usr/bin/env bash
# The quorumfs command against a real server: every command, every error message, exact output.
#
#   cli_test.sh QUORUMFS_CLI zk                          # a private Apache ZooKeeper 3.8
#   cli_test.sh QUORUMFS_CLI quorumfsd PATH_TO_QUORUMFSD # a private quorumfsd
#   cli_test.sh QUORUMFS_CLI --server-cmd PATH_TO_QUORUMFSD  (same as 'quorumfsd PATH')
#
# The server gets its own data dir and a free loopback port; it and every background process
# are stopped by PID on exit. Exit status: 0 if every check passed, 1 otherwise.
set -uo pipefail

usage() {
  echo "usage: $0 QUORUMFS_CLI zk | QUORUMFS_CLI quorumfsd PATH | QUORUMFS_CLI --server-cmd PATH" >&2
  exit 2
}
[ $# -ge 2 ] || usage
cli=$(realpath "$1")
kind=$2
server_bin=""
case "$kind" in
  zk) [ $# -eq 2 ] || usage ;;
  quorumfsd | --server-cmd)
    [ $# -eq 3 ] || usage
    kind=quorumfsd
    server_bin=$(realpath "$3")
    ;;
  *) usage ;;
esac
[ -x "$cli" ] || { echo "not executable: $cli" >&2; exit 2; }

dir=$(mktemp -d /tmp/qfs-cli-test-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
  python3 "$(dirname "$0")/../clients/ports.py"  # outside the ephemeral range; see ports.py
}
port=$(free_port)
dead_port=$(free_port)  # nothing listens here

four() {  # four-letter word over bash's /dev/tcp; empty if the port is closed
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 0
  printf '%s' "$1" >&3
  timeout 5 cat <&3
  exec 3<&-
}

mkdir -p "$dir/data"
if [ "$kind" = zk ]; then
  cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
extendedTypesEnabled=true
maxClientCnxns=0
CFG
  java -Xmx256m -cp /usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
else
  cat >"$dir/zoo.cfg" <<CFG
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
CFG
  "$server_bin" "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
fi
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 600); do
  [ "$(four ruok)" = imok ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$(four ruok)" != imok ]; then
  echo "FAIL: $kind did not start on port $port"
  tail -20 "$dir/server.log"
  exit 1
fi
echo "$kind serving on 127.0.0.1:$port"

failures=0
checks=0
fail() {
  failures=$((failures + 1))
  echo "FAIL: $*"
}

# run CMD...: output in $dir/out and $dir/err, exit status in $rc; every command is bounded.
run() {
  timeout 30 "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
}

show() {
  echo "  exit $rc; stdout:"
  sed 's/^/    | /' "$dir/out" | head -20
  echo "  stderr:"
  sed 's/^/    | /' "$dir/err" | head -20
}

# ok NAME EXPECTED_STDOUT CMD...: exit 0, stdout exactly EXPECTED_STDOUT, stderr empty.
ok() {
  local name=$1 expected=$2
  shift 2
  checks=$((checks + 1))
  run "$@"
  printf '%s' "$expected" >"$dir/expected"
  if [ $rc -ne 0 ] || ! cmp -s "$dir/expected" "$dir/out" || [ -s "$dir/err" ]; then
    fail "$name: expected exit 0 and stdout:"
    sed 's/^/    | /' "$dir/expected"
    show
  fi
}

# err NAME RC EXPECTED_STDERR CMD...: exit RC, stdout empty, stderr exactly EXPECTED_STDERR.
err() {
  local name=$1 want_rc=$2 expected=$3
  shift 3
  checks=$((checks + 1))
  run "$@"
  printf '%s' "$expected" >"$dir/expected"
  if [ $rc -ne "$want_rc" ] || ! cmp -s "$dir/expected" "$dir/err" || [ -s "$dir/out" ]; then
    fail "$name: expected exit $want_rc and stderr:"
    sed 's/^/    | /' "$dir/expected"
    show
  fi
}

# usage_err NAME FIRST_STDERR_LINE CMD...: exit 2, nothing on stdout, the given first line.
usage_err() {
  local name=$1 line=$2
  shift 2
  checks=$((checks + 1))
  run "$@"
  if [ $rc -ne 2 ] || [ "$(head -1 "$dir/err")" != "$line" ] || [ -s "$dir/out" ] ||
    ! grep -q "^Try 'quorumfs" "$dir/err"; then
    fail "$name: expected exit 2 and first line: $line"
    show
  fi
}

# expect NAME CONDITION-COMMAND...: a free-form check.
expect() {
  local name=$1
  shift
  checks=$((checks + 1))
  "$@" || fail "$name"
}

Q=("$cli" -s "127.0.0.1:$port")
T=/clitest
NL=$'\n'

# --- help and usage errors (they must not need a server: -s points at a closed port).
X=("$cli" -s "127.0.0.1:$dead_port" -t 200)
run "$cli" --help
expect "--help exits 0" [ $rc -eq 0 ]
for c in ls get set create delete stat watch status; do
  expect "--help lists $c" grep -q "^  $c" "$dir/out"
done
"$cli" create --help >"$dir/create_help"
run "$cli" help create
expect "help create = create --help" cmp -s "$dir/out" "$dir/create_help"
expect "help create: usage line" [ "$(head -1 "$dir/out")" = \
  "usage: quorumfs [GLOBAL OPTIONS] create [-e] [-s] [--ttl MS] [--container] PATH [DATA]" ]
run "$cli" ls --help
expect "ls --help" [ $rc -eq 0 -a "$(head -1 "$dir/out")" = "usage: quorumfs [GLOBAL OPTIONS] ls [-s] PATH" ]
run "$cli" watch --help
expect "watch --help explains re-armed watches" grep -q "re-armed" "$dir/out"
usage_err "no command" "quorumfs: no command given" "${X[@]}"
usage_err "unknown command" "quorumfs: unknown command 'frob'" "${X[@]}" frob /
usage_err "missing path" "quorumfs: get: missing PATH" "${X[@]}" get
usage_err "relative path" "quorumfs: get: invalid path 'a/b': must start with '/'" "${X[@]}" get a/b
usage_err "trailing slash" "quorumfs: get: invalid path '/a/': must not end with '/'" "${X[@]}" get /a/
usage_err "empty component" "quorumfs: stat: invalid path '/a//b': empty path component" "${X[@]}" stat /a//b
usage_err "dot component" "quorumfs: ls: invalid path '/a/..': '.' and '..' are not allowed" "${X[@]}" ls /a/..
usage_err "unknown option" "quorumfs: ls: unknown option '-x'" "${X[@]}" ls -x /
usage_err "unknown global option" "quorumfs: unknown option '--frob'" "$cli" --frob ls /
usage_err "bad timeout" "quorumfs: TIMEOUT_MS must be an integer in [1, 3600000], not 'abc'" "$cli" -t abc ls /
usage_err "bad version" "quorumfs: set: VERSION must be an integer in [-1, 2147483647], not 'x'" "${X[@]}" set -v x /a d
usage_err "-v needs a value" "quorumfs: delete: -v needs a value" "${X[@]}" delete /a -v
usage_err "-e with --ttl" "quorumfs: create: -e and --ttl cannot be combined" "${X[@]}" create -e --ttl 5 /a
usage_err "container with -s" "quorumfs: create: --container cannot be combined with -e, -s or --ttl" "${X[@]}" create --container -s /a
usage_err "bad ttl" "quorumfs: create: --ttl must be an integer in [1, 1099511627775], not '0'" "${X[@]}" create --ttl 0 /a
usage_err "too many args" "quorumfs: get: too many arguments" "${X[@]}" get /a /b
usage_err "non-sequential trailing slash" "quorumfs: create: invalid path '/a/': must not end with '/'" "${X[@]}" create /a/

# --- unreachable servers: bounded wait, the servers tried are named.
err "unreachable" 1 "quorumfs: cannot reach the server at 127.0.0.1:$dead_port (tried for 300 ms)$NL" \
  "$cli" -s "127.0.0.1:$dead_port" -t 300 ls /
err "unreachable list" 1 \
  "quorumfs: cannot reach the server at 127.0.0.1:$dead_port,127.0.0.1:$dead_port (tried for 300 ms)$NL" \
  "$cli" -s "127.0.0.1:$dead_port,127.0.0.1:$dead_port" -t 300 stat /
err "status unreachable" 1 \
  "quorumfs: status: cannot reach the server at 127.0.0.1:$dead_port (Connection refused)$NL" \
  "$cli" -s "127.0.0.1:$dead_port" status
ok "QUORUMFS_SERVER" "" env QUORUMFS_SERVER="127.0.0.1:$port" "$cli" get /

# --- create, get, set
ok "create root" "$T$NL" "${Q[@]}" create $T
ok "create with data" "$T/a$NL" "${Q[@]}" create $T/a hello
err "create exists" 1 "quorumfs: create $T/a: node exists$NL" "${Q[@]}" create $T/a
err "create no parent" 1 "quorumfs: create $T/no/x: no such node (parent $T/no does not exist)$NL" \
  "${Q[@]}" create $T/no/x
ok "get exact" "hello" "${Q[@]}" get $T/a
err "get missing" 1 "quorumfs: get $T/zz: no such node$NL" "${Q[@]}" get $T/zz
ok "create empty" "$T/empty$NL" "${Q[@]}" create $T/empty
ok "get empty" "" "${Q[@]}" get $T/empty
ok "set arg" "" "${Q[@]}" set $T/a world
ok "get after set" "world" "${Q[@]}" get $T/a
err "set bad version" 1 "quorumfs: set $T/a: version mismatch (expected version 5, node is at version 1)$NL" \
  "${Q[@]}" set -v 5 $T/a x
ok "set right version" "" "${Q[@]}" set -v 1 $T/a again
err "set missing" 1 "quorumfs: set $T/zz: no such node$NL" "${Q[@]}" set $T/zz x
printf 'a\0b\nc\377' >"$dir/bin"
checks=$((checks + 1))
timeout 30 "${Q[@]}" set $T/a <"$dir/bin" || fail "set from stdin"
timeout 30 "${Q[@]}" get $T/a >"$dir/got" || fail "get binary"
cmp -s "$dir/bin" "$dir/got" || fail "binary data does not round-trip"
head -c 600000 /dev/urandom >"$dir/big"
ok "create big" "$T/big$NL" "${Q[@]}" create $T/big
checks=$((checks + 1))
timeout 30 "${Q[@]}" set $T/big <"$dir/big" || fail "set 600 kB from stdin"
timeout 30 "${Q[@]}" get $T/big >"$dir/got" || fail "get 600 kB"
cmp -s "$dir/big" "$dir/got" || fail "600 kB value does not round-trip"
if [ "$kind" = zk ]; then  # ZooKeeper drops the connection on a packet over jute.maxbuffer
  head -c 1100000 /dev/zero >"$dir/huge"
  err "value over jute.maxbuffer" 1 "quorumfs: set $T/big: cannot reach the server at 127.0.0.1:$port (connection lost; the server may have refused a value larger than its jute.maxbuffer)$NL" \
    "${Q[@]}" set $T/big <"$dir/huge"
fi
ok "set dash data after --" "" "${Q[@]}" set $T/a -- -x
ok "get dash data" "-x" "${Q[@]}" get $T/a

# --- stat and get -s (dataVersion 4: world, again, stdin, -x)
run "${Q[@]}" stat $T/a
expect "stat exit" [ $rc -eq 0 ]
expect "stat field names" [ "$(cut -d: -f1 "$dir/out" | tr '\n' ' ')" = \
  "cZxid ctime mZxid mtime pZxid cversion dataVersion aclVersion ephemeralOwner dataLength numChildren " ]
expect "stat values" [ "$(sed -n '6,11p' "$dir/out" | tr '\n' ' ')" = \
  "cversion: 0 dataVersion: 4 aclVersion: 0 ephemeralOwner: 0x0 dataLength: 2 numChildren: 0 " ]
expect "stat zxids in hex" [ "$(grep -cE '^(cZxid|mZxid|pZxid): 0x[0-9a-f]+$' "$dir/out")" = 3 ]
expect "stat times" [ "$(grep -cE '^(ctime|mtime): [0-9]+ \([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{3} UTC\)$' "$dir/out")" = 2 ]
czxid=$(sed -n 's/^cZxid: //p' "$dir/out")
mzxid=$(sed -n 's/^mZxid: //p' "$dir/out")
expect "mZxid after cZxid" [ $((mzxid)) -gt $((czxid)) ]
cp "$dir/out" "$dir/stat_a"
run "${Q[@]}" get -s $T/a
expect "get -s: data on stdout" [ $rc -eq 0 -a "$(cat "$dir/out")" = "-x" ]
expect "get -s: Stat on stderr" cmp -s "$dir/err" "$dir/stat_a"
err "stat missing" 1 "quorumfs: stat $T/zz: no such node$NL" "${Q[@]}" stat $T/zz

# --- ls
ok "create d" "$T/d$NL" "${Q[@]}" create $T/d
for c in zeta alpha Mid; do ok "create d/$c" "$T/d/$c$NL" "${Q[@]}" create $T/d/$c; done
ok "ls sorted" "Mid${NL}alpha${NL}zeta$NL" "${Q[@]}" ls $T/d
run "${Q[@]}" ls -s $T/d
expect "ls -s exit" [ $rc -eq 0 ]
expect "ls -s children then a blank line" [ "$(head -4 "$dir/out" | tr '\n' ,)" = "Mid,alpha,zeta,," ]
expect "ls -s Stat" [ "$(tail -n +5 "$dir/out" | grep -cE '^(cversion: 3|numChildren: 3)$')" = 2 ]
expect "ls -s has 15 lines" [ "$(wc -l <"$dir/out")" = 15 ]
err "ls missing" 1 "quorumfs: ls $T/nope: no such node$NL" "${Q[@]}" ls $T/nope
ok "ls empty" "" "${Q[@]}" ls $T/empty

# --- create modes
ok "create s" "$T/s$NL" "${Q[@]}" create $T/s
ok "sequential 0" "$T/s/job-0000000000$NL" "${Q[@]}" create -s $T/s/job-
ok "sequential 1" "$T/s/job-0000000001$NL" "${Q[@]}" create -s $T/s/job- data
ok "sequential, trailing slash" "$T/s/0000000002$NL" "${Q[@]}" create -s $T/s/
ok "ephemeral sequential" "$T/s/e-0000000003$NL" "${Q[@]}" create -es $T/s/e-
ok "ephemeral gone with the session" "0000000002${NL}job-0000000000${NL}job-0000000001$NL" \
  "${Q[@]}" ls $T/s
ok "ephemeral" "$T/eph$NL" "${Q[@]}" create -e $T/eph
err "ephemeral removed" 1 "quorumfs: stat $T/eph: no such node$NL" "${Q[@]}" stat $T/eph
ok "ttl" "$T/ttl$NL" "${Q[@]}" create --ttl 600000 $T/ttl tdata
ok "ttl data" "tdata" "${Q[@]}" get $T/ttl
ok "ttl sequential (deletes do not advance the counter)" "$T/s/t-0000000004$NL" "${Q[@]}" create -s --ttl=600000 $T/s/t-
ok "container" "$T/cont$NL" "${Q[@]}" create --container $T/cont
ok "container child" "$T/cont/x$NL" "${Q[@]}" create $T/cont/x
ok "chroot" "/viachroot$NL" "$cli" -s "127.0.0.1:$port$T" create /viachroot
ok "chroot stat" "" "${Q[@]}" get $T/viachroot

# --- errors that need another session: an ephemeral parent, an ACL that denies writes.
# kazoo (python3-kazoo) holds that session until its stdin closes.
if /usr/bin/python3 -c 'import kazoo' 2>/dev/null; then
  mkfifo "$dir/hold"
  cat >"$dir/hold.py" <<'PY'
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
zk = KazooClient(hosts="127.0.0.1:" + sys.argv[1], timeout=10)
zk.start(timeout=10)
root = sys.argv[2]
zk.create(root + "/held", b"", ephemeral=True)
zk.create(root + "/ro", b"r", acl=[make_acl("world", "anyone", read=True)])
print("0x%x" % zk.client_id[0], flush=True)
sys.stdin.read()
zk.stop()
zk.close()
PY
  /usr/bin/python3 "$dir/hold.py" "$port" "$T" <"$dir/hold" >"$dir/kazoo.out" 2>"$dir/kazoo.err" &
  kazoo_pid=$!
  pids+=("$kazoo_pid")
  exec 4>"$dir/hold"
  for _ in $(seq 200); do
    [ -s "$dir/kazoo.out" ] && break
    sleep 0.1
  done
  owner=$(head -1 "$dir/kazoo.out")
  expect "kazoo session up" [ -n "$owner" ]
  run "${Q[@]}" stat $T/held
  expect "ephemeralOwner is the owner's session" grep -qx "ephemeralOwner: $owner" "$dir/out"
  err "child of an ephemeral" 1 \
    "quorumfs: create $T/held/x: ephemeral nodes cannot have children (parent $T/held is ephemeral)$NL" \
    "${Q[@]}" create $T/held/x
  err "ACL denies set" 1 "quorumfs: set $T/ro: not authorized (the node's ACL denies this)$NL" \
    "${Q[@]}" set $T/ro x
  ok "ACL allows get" "r" "${Q[@]}" get $T/ro
  exec 4>&-
  checks=$((checks + 1))
  timeout 20 tail --pid="$kazoo_pid" -f /dev/null || fail "kazoo helper did not exit"
  err "ephemeral gone with its session" 1 "quorumfs: stat $T/held: no such node$NL" \
    "${Q[@]}" stat $T/held
  ok "delete read-only node (delete is the parent's permission)" "" "${Q[@]}" delete $T/ro
else
  echo "SKIP: ephemeral-parent and ACL errors need python3-kazoo for /usr/bin/python3"
fi

# --- delete
ok "delete" "" "${Q[@]}" delete $T/a
err "deleted" 1 "quorumfs: get $T/a: no such node$NL" "${Q[@]}" get $T/a
err "delete missing" 1 "quorumfs: delete $T/a: no such node$NL" "${Q[@]}" delete $T/a
err "delete not empty" 1 "quorumfs: delete $T/d: node has children (use -r to delete the subtree)$NL" \
  "${Q[@]}" delete $T/d
err "delete bad version" 1 \
  "quorumfs: delete $T/ttl: version mismatch (expected version 7, node is at version 0)$NL" \
  "${Q[@]}" delete -v 7 $T/ttl
err "delete -r bad version" 1 \
  "quorumfs: delete $T/d: version mismatch (expected version 7, node is at version 0)$NL" \
  "${Q[@]}" delete -r -v 7 $T/d
ok "delete -r bad version deleted nothing" "Mid${NL}alpha${NL}zeta$NL" "${Q[@]}" ls $T/d
ok "delete -r" "" "${Q[@]}" delete -r $T/d
err "delete -r removed" 1 "quorumfs: stat $T/d: no such node$NL" "${Q[@]}" stat $T/d
ok "delete right version" "" "${Q[@]}" delete -v 0 $T/ttl
err "delete root" 1 "quorumfs: delete /: the root node cannot be deleted$NL" "${Q[@]}" delete -r /
for p in $T/r $T/r/a $T/r/a/b $T/r/a/b/c $T/r/x; do "${Q[@]}" create $p >/dev/null; done
ok "delete -r deep" "" "${Q[@]}" delete -r $T/r
err "delete -r deep removed" 1 "quorumfs: ls $T/r: no such node$NL" "${Q[@]}" ls $T/r

# --- watch: start, wait for the 'watching' line, change things, compare. One-shot watches are
# re-armed by the CLI after each event, so a change made before the re-arm is (by ZooKeeper's
# semantics) not reported: each change waits until the event of the previous one was printed.
start_watch() {  # start_watch NAME ARGS...: sets watch_pid
  local name=$1
  shift
  timeout 120 "${Q[@]}" watch "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  watch_pid=$!
  pids+=("$watch_pid")
  for _ in $(seq 100); do
    grep -q "^quorumfs: watching" "$dir/$name.err" && return 0
    sleep 0.1
  done
  fail "$name: no 'watching' line"
}
stop_watch() {  # stop_watch NAME EXPECTED: waits for the lines, then Ctrl-C
  local name=$1 expected=$2 want
  want=$(printf '%s' "$expected" | wc -l)
  for _ in $(seq 100); do
    [ "$(wc -l <"$dir/$name.out")" -ge "$want" ] && break
    sleep 0.1
  done
  sleep 0.3 # anything extra would show up now
  kill -INT "$watch_pid"
  wait "$watch_pid"
  local wrc=$?
  checks=$((checks + 1))
  printf '%s' "$expected" >"$dir/expected"
  if [ $wrc -ne 0 ] || ! cmp -s "$dir/expected" "$dir/$name.out"; then
    fail "$name: expected exit 0 after Ctrl-C and events:"
    sed 's/^/    | /' "$dir/expected"
    echo "  exit $wrc; got:"
    sed 's/^/    | /' "$dir/$name.out" "$dir/$name.err"
  fi
}
changes() {  # changes NAME "N1 N2 ...": after change i, wait for Ni lines of events
  local name=$1 i=0
  local -a counts=($2)
  local -a cmds=("create $T/w" "set $T/w v1" "set $T/w v2" "set $T/w v3" "create $T/w/c"
    "create $T/w/c/d x" "set $T/w/c/d y" "delete -r $T/w/c" "delete $T/w" "create $T/w")
  for c in "${cmds[@]}"; do
    # shellcheck disable=SC2086
    "${Q[@]}" $c >/dev/null
    for _ in $(seq 50); do
      [ "$(wc -l <"$dir/$name.out")" -ge "${counts[$i]}" ] && break
      sleep 0.1
    done
    i=$((i + 1))
  done
}
start_watch watch1 $T/w
changes watch1 "1 2 3 4 5 5 5 6 7 8"
stop_watch watch1 "NodeCreated $T/w
NodeDataChanged $T/w
NodeDataChanged $T/w
NodeDataChanged $T/w
NodeChildrenChanged $T/w
NodeChildrenChanged $T/w
NodeDeleted $T/w
NodeCreated $T/w
"
"${Q[@]}" delete $T/w
start_watch watch2 -r $T/w
changes watch2 "1 2 3 4 5 6 7 9 10 11"
stop_watch watch2 "NodeCreated $T/w
NodeDataChanged $T/w
NodeDataChanged $T/w
NodeDataChanged $T/w
NodeCreated $T/w/c
NodeCreated $T/w/c/d
NodeDataChanged $T/w/c/d
NodeDeleted $T/w/c/d
NodeDeleted $T/w/c
NodeDeleted $T/w
NodeCreated $T/w
"
"${Q[@]}" delete $T/w

# --- status
run "${Q[@]}" status
expect "status exit" [ $rc -eq 0 ]
expect "status server" [ "$(head -1 "$dir/out")" = "server:      127.0.0.1:$port" ]
expect "status mode" grep -qE '^mode: +(standalone|leader|follower)$' "$dir/out"
expect "status zxid" grep -qE '^zxid: +0x[0-9a-f]+ \(epoch [0-9]+, counter [0-9]+\)$' "$dir/out"
expect "status nodes" grep -qE '^nodes: +[0-9]+$' "$dir/out"
expect "status outstanding" grep -qE '^outstanding: +[0-9]+$' "$dir/out"
run "$cli" -s "127.0.0.1:$port,127.0.0.1:$dead_port" status
expect "status of two servers: exit 1" [ $rc -eq 1 ]
expect "status of two servers: the live one" grep -q "^server:      127.0.0.1:$port$" "$dir/out"
expect "status of two servers: the dead one" grep -q "127.0.0.1:$dead_port (Connection refused)" "$dir/err"

# --- quiet by default, the client library's log with -v
run "$cli" -v -s "127.0.0.1:$port" get $T/empty
expect "-v shows the client log" [ $rc -eq 0 -a -s "$dir/err" ]

# --- clean up
ok "delete -r test root" "" "${Q[@]}" delete -r $T
run "${Q[@]}" ls /
expect "ls / after cleanup" [ $rc -eq 0 ]
expect "test root gone" [ "$(grep -cx clitest "$dir/out")" = 0 ]

echo "$checks checks, $failures failed"
[ $failures -eq 0 ]
