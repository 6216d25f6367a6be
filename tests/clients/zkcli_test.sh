#!/usr/bin/env bash
# ZooKeeper's own shell, zkCli.sh (Debian's zookeeper 3.8 package), against a private server.
#
#   zkcli_test.sh zk                   # Apache ZooKeeper 3.8
#   zkcli_test.sh quorumfsd PATH       # quorumfsd
#
# Commands are piped into one zkCli session at a time; the transcript (minus zkCli's own banner
# and connection chatter, with zxids, times and session ids replaced by ZXID/TIME/SESSION) must
# be exactly what Apache ZooKeeper 3.8 gives. The server is started through server.py (own data
# dir, free loopback port) and stopped by PID on exit. Exit status 0 iff every check passed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZKCLI=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
PY=/usr/bin/python3

usage() {
  echo "usage: $0 zk | quorumfsd PATH" >&2
  exit 2
}
[ $# -ge 1 ] || usage
kind=$1
case "$kind" in
  zk) [ $# -eq 1 ] || usage; server_args=(zk) ;;
  quorumfsd) [ $# -eq 2 ] || usage; server_args=(quorumfsd "$(realpath "$2")") ;;
  *) usage ;;
esac
[ -x "$ZKCLI" ] || { echo "zkCli.sh not found at $ZKCLI" >&2; exit 2; }

dir=$(mktemp -d /tmp/qfs-zkcli-test-XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

"$PY" "$here/server.py" "${server_args[@]}" --tick 500 \
  --set znode.container.checkIntervalMs=200 >"$dir/server.info" 2>"$dir/server.err" &
server_pid=$!
for _ in $(seq 900); do
  [ -s "$dir/server.info" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$dir/server.info" ]; then
  echo "FAIL: $kind did not start"
  cat "$dir/server.err"
  exit 1
fi
port=$(cut -d' ' -f1 "$dir/server.info")
server=127.0.0.1:$port
echo "$kind serving on $server"

failures=0
checks=0
fail() {
  failures=$((failures + 1))
  echo "FAIL: $*"
}

# session NAME: runs the commands on stdin in one zkCli session (then 'quit'); the filtered,
# normalised transcript goes to $dir/NAME.got, the raw one to $dir/NAME.raw.
session() {
  local name=$1
  { cat; echo quit; } >"$dir/$name.in"
  timeout 60 "$ZKCLI" -server "$server" <"$dir/$name.in" >"$dir/$name.raw" 2>&1
  local rc=$?
  # (zkCli's exit status is that of its last failing command, so only a timeout is an error)
  [ $rc -ne 124 ] || fail "$name: zkCli did not finish within 60 s"
  grep -v -E '^(SLF4J:|Connecting to |Welcome to ZooKeeper!|JLine support is|WATCHER::|$)' \
      "$dir/$name.raw" |
    grep -v -E '^WatchedEvent state:(SyncConnected|Closed) type:None path:null$' |
    sed -E -e 's/^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+$/\1 = ZXID/' \
      -e 's/^(ctime|mtime) = .+$/\1 = TIME/' \
      -e 's/^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*$/ephemeralOwner = SESSION/' \
      >"$dir/$name.got"
}

# expect NAME: the transcript of session NAME is exactly stdin.
expect() {
  local name=$1
  checks=$((checks + 1))
  cat >"$dir/$name.want"
  if diff -u "$dir/$name.want" "$dir/$name.got" >"$dir/$name.diff"; then
    echo "ok $name"
  else
    fail "$name: transcript differs from ZooKeeper's (--- expected, +++ got)"
    sed 's/^/    /' "$dir/$name.diff"
  fi
}

# has NAME LINE: the raw transcript of session NAME contains LINE (a whole line).
has() {
  checks=$((checks + 1))
  if grep -q -x -F -- "$2" "$dir/$1.raw"; then
    echo "ok $1: $2"
  else
    fail "$1: no line '$2' in:"
    sed 's/^/    | /' "$dir/$1.raw" | grep -v SLF4J
  fi
}

# lacks NAME PATTERN: no line of the raw transcript matches PATTERN (grep -E).
lacks() {
  checks=$((checks + 1))
  if grep -q -E -- "$2" "$dir/$1.raw"; then
    fail "$1: unexpected line matching '$2':"
    grep -E -- "$2" "$dir/$1.raw" | sed 's/^/    | /'
  else
    echo "ok $1: nothing like $2"
  fi
}

# digest id of u:p, as setAcl wants it
U_DIGEST='u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ='

# ---- create modes, get/set/stat, ls, delete, ephemerals, sync ----
session basic <<'EOF'
create /t
create /t/p data1
create /t/p again
create /nope/x
create -e /t/e eph
create -s /t/s-
create -s /t/s- second
create -e -s /t/x-es-
create -c /t/c
create -t 2000 /t/ttl
get /t/p
get -s /t/p
set -v 0 /t/p v2
set -v 0 /t/p v3
set -s /t/p v4
get /t/p
stat /t/p
stat /t/missing
get /t/missing
set /t/missing x
stat /t/e
get /t/s-0000000003
ls /t
ls -s /t
create /t/tree
create /t/tree/a
create /t/tree/a/b
ls -R /t/tree
delete /t/tree
delete -v 5 /t/tree/a/b
delete /t/tree/a/b
delete /t/tree/a/b
create /t/tree/a/b
deleteall /t/tree
ls /t
getEphemerals /t/e
getEphemerals /t/x
getEphemerals /none
getAllChildrenNumber /t
getAllChildrenNumber /t/p
getAllChildrenNumber /missing
sync /t
create /t/c/k
delete /t/c/k
EOF
expect basic <<'EOF'
Created /t
Created /t/p
Node already exists: /t/p
Node does not exist: /nope/x
Created /t/e
Created /t/s-0000000002
Created /t/s-0000000003
Created /t/x-es-0000000004
Created /t/c
Created /t/ttl
data1
data1
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 5
numChildren = 0
version No is not valid : /t/p
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 0
dataVersion = 2
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 2
numChildren = 0
v4
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 0
dataVersion = 2
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 2
numChildren = 0
Node does not exist: /t/missing
Node does not exist: /t/missing
Node does not exist: /t/missing
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = SESSION
dataLength = 3
numChildren = 0
second
[c, e, p, s-0000000002, s-0000000003, ttl, x-es-0000000004]
[c, e, p, s-0000000002, s-0000000003, ttl, x-es-0000000004]
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 7
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 0
numChildren = 7
Created /t/tree
Created /t/tree/a
Created /t/tree/a/b
/t/tree
/t/tree/a
/t/tree/a/b
Node not empty: /t/tree
version No is not valid : /t/tree/a/b
Node does not exist: /t/tree/a/b
Created /t/tree/a/b
[c, e, p, s-0000000002, s-0000000003, ttl, x-es-0000000004]
[/t/e]
[/t/x-es-0000000004]
[]
7
0
Node does not exist: /missing
Sync is OK
Created /t/c/k
EOF
# the same zxid cannot be both: a set moves mZxid past cZxid
raw_czxid=$(grep -m2 '^cZxid' "$dir/basic.raw" | tail -1)
raw_mzxid=$(grep -m2 '^mZxid' "$dir/basic.raw" | tail -1)
checks=$((checks + 1))
if [ "${raw_czxid#cZxid = }" != "${raw_mzxid#mZxid = }" ]; then
  echo "ok basic: set moved mZxid"
else
  fail "basic: mZxid still equals cZxid after two sets ($raw_czxid, $raw_mzxid)"
fi

# ---- a new session: the old one's ephemerals are gone; ACLs and auth ----
session acl <<EOF
stat /t/e
stat /t/x-es-0000000004
getAcl /t/p
setAcl /t/p digest:$U_DIGEST:cdrwa
getAcl /t/p
get /t/p
addauth digest u:p
getAcl /t/p
get /t/p
setAcl -v 0 /t/p world:anyone:r
setAcl -v 1 /t/p world:anyone:cdrwa
getAcl -s /t/p
create /t/ipno x ip:10.0.0.1:r
get /t/ipno
create /t/ipyes y ip:127.0.0.1:r
get /t/ipyes
create /t/ro r world:anyone:r
set /t/ro x
create /t/ro/child
create /t/bad x foo:bar:r
create /t/mine m auth::cdrwa
getAcl /t/mine
create -e /t/only-eph
getEphemerals
EOF
expect acl <<EOF
Node does not exist: /t/e
Node does not exist: /t/x-es-0000000004
'world,'anyone
: cdrwa
Insufficient permission : /t/p
Insufficient permission : /t/p
'digest,'$U_DIGEST
: cdrwa
v4
version No is not valid : /t/p
'world,'anyone
: cdrwa
cZxid = ZXID
ctime = TIME
mZxid = ZXID
mtime = TIME
pZxid = ZXID
cversion = 0
dataVersion = 2
aclVersion = 2
ephemeralOwner = 0x0
dataLength = 2
numChildren = 0
Created /t/ipno
Insufficient permission : /t/ipno
Created /t/ipyes
y
Created /t/ro
Insufficient permission : /t/ro
Insufficient permission : /t/ro/child
KeeperErrorCode = InvalidACL for /t/bad
Acl is not valid : /t/bad
Created /t/mine
'digest,'$U_DIGEST
: cdrwa
Created /t/only-eph
[/t/only-eph]
EOF

# ---- whoami ----
session whoami <<'EOF'
whoami
addauth digest u:p
whoami
EOF
if grep -q -E 'Command not found|whoami.*not' "$dir/whoami.raw"; then
  echo "skip whoami: this zkCli has no whoami command"
else
  checks=$((checks + 1))
  got_who=$(cat "$dir/whoami.got")
  want_who=$(printf '%s\n' 'Auth scheme: User' 'ip: 127.0.0.1' 'Auth scheme: User' \
    'digest: u' 'ip: 127.0.0.1')
  # the identities after the second header may come in either order
  norm_who=$(printf '%s\n' "$got_who" | head -3; printf '%s\n' "$got_who" | tail -n +4 | sort)
  if [ "$norm_who" = "$want_who" ]; then echo "ok whoami"; else
    fail "whoami: expected (identities after the 2nd header in any order):"
    printf '%s\n' "$want_who" | sed 's/^/    | /'
    echo "  got:"
    printf '%s\n' "$got_who" | sed 's/^/    | /'
  fi
fi

# ---- watches: one-shot, persistent recursive, removed ----
session watches <<'EOF'
create /w
get -w /w
set /w 1
set /w 2
stat -w /w/new
create /w/new
ls -w /w
create /w/other
addWatch -m PERSISTENT_RECURSIVE /w/r
create /w/r
create /w/r/a
set /w/r/a x
create /w/rw
get -w /w/rw
removewatches /w/rw
set /w/rw gone
sync /w
EOF
has watches "WatchedEvent state:SyncConnected type:NodeDataChanged path:/w"
has watches "WatchedEvent state:SyncConnected type:NodeCreated path:/w/new"
has watches "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/w"
has watches "WatchedEvent state:SyncConnected type:NodeCreated path:/w/r"
has watches "WatchedEvent state:SyncConnected type:NodeCreated path:/w/r/a"
has watches "WatchedEvent state:SyncConnected type:NodeDataChanged path:/w/r/a"
lacks watches "type:NodeDataChanged path:/w/rw$"
# (the Java client's own notice that the watch is gone, after the server removed it)
has watches "WatchedEvent state:SyncConnected type:DataWatchRemoved path:/w/rw"
checks=$((checks + 1))
n=$(grep -c -x -F "WatchedEvent state:SyncConnected type:NodeDataChanged path:/w" "$dir/watches.raw")
if [ "$n" -eq 1 ]; then echo "ok watches: one-shot watch fired once"; else
  fail "watches: the one-shot data watch fired $n times"
fi

# ---- containers and TTL nodes are reaped ----
reaped=""
for _ in $(seq 20); do
  session reap <<'EOF'
stat /t/c
stat /t/ttl
EOF
  if [ "$(cat "$dir/reap.got")" = "$(printf 'Node does not exist: /t/c\nNode does not exist: /t/ttl')" ]; then
    reaped=yes
    break
  fi
  sleep 0.5
done
checks=$((checks + 1))
if [ -n "$reaped" ]; then echo "ok reap: emptied container and expired TTL node deleted"; else
  fail "reap: still there after about 20 s:"
  sed 's/^/    | /' "$dir/reap.got"
fi

echo "zkcli: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
