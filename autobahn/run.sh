#!/usr/bin/env bash
# Run the Autobahn|Testsuite against our testees and check the results
# against the committed expectations in autobahn/expected/.
#
# usage: autobahn/run.sh [--role server|client|both] [--adapter tokio,...]
#                        [--cases '1.*,2.*,...'] [--exclude '12.*,...']
#                        [--update] [--timeout SECONDS]
#
# See autobahn/NOTES.md. Exit status: 0 when every run matched its expected
# file (or --update rewrote them), 1 when any run differed, failed, crashed
# or timed out, 2 on a usage error.
set -euo pipefail

# ---- Defaults (edit here) ----------------------------------------------------
# Adapters tested by default, comma-separated.
ADAPTERS="tokio,async-std,smol,blocking,mio"
# Case patterns (wstest syntax: '*' wildcard; a pattern without '*' is an
# exact case id).
CASES="*"
# Cases excluded from every run. 12.* and 13.* test permessage-deflate, which
# is not implemented yet: clear this when it lands, then run with --update.
EXCLUDE="${AUTOBAHN_EXCLUDE-}"
# Wall-clock limit for one role/adapter run (wstest plus testee), seconds.
RUN_TIMEOUT="${AUTOBAHN_TIMEOUT:-1200}"
# ------------------------------------------------------------------------------

usage() {
  sed -n '/^# usage:/,/^# *$/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

ROLE=both
UPDATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --role) ROLE="${2:?--role needs a value}"; shift 2 ;;
    --role=*) ROLE="${1#*=}"; shift ;;
    --adapter|--adapters) ADAPTERS="${2:?--adapter needs a value}"; shift 2 ;;
    --adapter=*|--adapters=*) ADAPTERS="${1#*=}"; shift ;;
    --cases) CASES="${2:?--cases needs a value}"; shift 2 ;;
    --cases=*) CASES="${1#*=}"; shift ;;
    --exclude) EXCLUDE="${2?--exclude needs a value}"; shift 2 ;;
    --exclude=*) EXCLUDE="${1#*=}"; shift ;;
    --timeout) RUN_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
    --timeout=*) RUN_TIMEOUT="${1#*=}"; shift ;;
    --update) UPDATE=1; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
  esac
done
case "$ROLE" in
  server) ROLES=(server) ;;
  client) ROLES=(client) ;;
  both) ROLES=(server client) ;;
  *) echo "run.sh: --role must be server, client or both" >&2; exit 2 ;;
esac
IFS=, read -r -a ADAPTER_LIST <<<"$ADAPTERS"
[ "${#ADAPTER_LIST[@]}" -gt 0 ] || { echo "run.sh: no adapter given" >&2; exit 2; }
for a in "${ADAPTER_LIST[@]}"; do
  [[ "$a" =~ ^[a-z0-9_-]+$ ]] || { echo "run.sh: bad adapter name '$a'" >&2; exit 2; }
done
[[ "$RUN_TIMEOUT" =~ ^[0-9]+$ ]] || { echo "run.sh: bad --timeout" >&2; exit 2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$HERE/.." && pwd -P)"
REPORTS="$HERE/reports"
EXPECTED="$HERE/expected"
mkdir -p "$REPORTS"

log() { echo "[autobahn] $*"; }

# ---- Child processes: every one is recorded and killed by PID on exit -------
PIDS=()
alive() {
  # A reaped or zombie process counts as gone.
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1 || true)
  [ -n "$state" ] && [ "$state" != Z ]
}
forget_pid() {
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() {   # stop_pid PID: TERM, then KILL after 5 s; reap; forget
  local pid=$1 _
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID SECONDS: until 127.0.0.1:PORT accepts, while PID lives.
wait_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive "$pid" || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

show_log() {   # show_log FILE: its last lines, indented
  [ -s "$1" ] || return 0
  echo "---- last lines of $1:"
  tail -n 25 "$1" | sed 's/^/    /'
  echo "----"
}

# ---- Tools ----------------------------------------------------------------------
log "installing wstest (autobahn/install.sh)"
WSTEST="$("$HERE/install.sh")"
log "wstest: $WSTEST"

if [ -n "${AUTOBAHN_BIN_DIR:-}" ]; then
  # For testing this harness with stand-in testees.
  BIN="$AUTOBAHN_BIN_DIR"
  log "using testee binaries from AUTOBAHN_BIN_DIR=$BIN (no cargo build)"
else
  log "building: cargo build --release -p autobahn"
  (cd "$ROOT" && cargo build --release -p autobahn)
  target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
               python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  BIN="$target_dir/release"
fi

# ---- One role/adapter run ----------------------------------------------------------
# request_reports PORT AGENT: open ws://127.0.0.1:PORT/updateReports?agent=AGENT
# (a minimal WebSocket client: wstest writes the reports, then closes).
request_reports() {
  timeout 60 python3 - "$1" "$2" <<'EOF'
import base64, os, socket, sys
port, agent = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=50)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /updateReports?agent=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % (agent, port, key)).encode())
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
    head, sep, frames = data.partition(b"\r\n\r\n")
    if sep and len(frames) >= 2 and frames[0] & 0x0F == 8:
        s.sendall(b"\x88\x80" + os.urandom(4))  # masked, empty close frame
        break
s.close()
EOF
}

remaining() {   # remaining DEADLINE: whole seconds left, at least 1
  local left=$(($1 - SECONDS))
  [ "$left" -gt 0 ] && echo "$left" || echo 1
}

json_list() {   # json_list 'a,b' -> ["a", "b"]
  python3 -c 'import json, sys; print(json.dumps([p.strip() for p in sys.argv[1].split(",") if p.strip()]))' "$1"
}

# run_one ROLE ADAPTER: one run; sets RUN_STATUS (ok|differ|error) and
# RUN_COUNTS ("MATCHED FAILED": cases as expected, cases differing + broken).
run_one() {
  local role=$1 adapter=$2
  local name="$role-$adapter" agent="ws-$adapter-$role"
  local outdir="$REPORTS/$name"
  local deadline=$((SECONDS + RUN_TIMEOUT))
  local port pid rc=0 broken=""
  RUN_STATUS=error
  RUN_COUNTS="0 1"
  rm -rf "$outdir" "$REPORTS/$name.json" "$REPORTS/$name-summary.txt"
  mkdir -p "$outdir"
  port=$(free_port)
  export PYTHONUNBUFFERED=1   # live wstest logs

  if [ "$role" = server ]; then
    local server="$BIN/autobahn-server"
    [ -x "$server" ] || { log "$name: $server not found"; return; }
    log "$name: starting $server --adapter $adapter --addr 127.0.0.1:$port"
    "$server" --adapter "$adapter" --addr "127.0.0.1:$port" >"$outdir/testee.log" 2>&1 &
    local testee=$!
    PIDS+=("$testee")
    if ! wait_port "$port" "$testee" 30; then
      log "$name: the server did not accept connections on port $port"
      show_log "$outdir/testee.log"
      stop_pid "$testee"
      return
    fi
    cat >"$outdir/spec.json" <<EOF
{
  "outdir": "$outdir",
  "servers": [{"agent": "$agent", "url": "ws://127.0.0.1:$port"}],
  "cases": $(json_list "$CASES"),
  "exclude-cases": $(json_list "$EXCLUDE"),
  "exclude-agent-cases": {}
}
EOF
    log "$name: wstest -m fuzzingclient (agent $agent, limit $(remaining "$deadline")s)"
    (cd "$outdir" && exec timeout --kill-after=10 "$(remaining "$deadline")" \
       "$WSTEST" -m fuzzingclient -s "$outdir/spec.json") >"$outdir/wstest.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      broken="timed out after ${RUN_TIMEOUT}s"
    elif [ "$rc" != 0 ]; then
      broken="wstest failed (exit status $rc)"
    fi
    if ! alive "$testee"; then
      local trc=0
      wait "$testee" || trc=$?
      forget_pid "$testee"
      broken="${broken:+$broken; }the testee server died during the run (exit status $trc)"
    fi
    stop_pid "$testee"
  else
    local client="$BIN/autobahn-client"
    [ -x "$client" ] || { log "$name: $client not found"; return; }
    cat >"$outdir/spec.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$outdir",
  "cases": $(json_list "$CASES"),
  "exclude-cases": $(json_list "$EXCLUDE"),
  "exclude-agent-cases": {}
}
EOF
    log "$name: starting wstest -m fuzzingserver on port $port"
    (cd "$outdir" && WSTEST_LISTEN_INTERFACE=127.0.0.1 \
       exec "$WSTEST" -m fuzzingserver --webport 0 -s "$outdir/spec.json") \
      >"$outdir/wstest.log" 2>&1 &
    local fuzzer=$!
    PIDS+=("$fuzzer")
    if ! wait_port "$port" "$fuzzer" 60; then
      log "$name: wstest fuzzingserver did not start"
      show_log "$outdir/wstest.log"
      stop_pid "$fuzzer"
      return
    fi
    log "$name: $client --adapter $adapter --url ws://127.0.0.1:$port --agent $agent (limit $(remaining "$deadline")s)"
    timeout --kill-after=10 "$(remaining "$deadline")" \
      "$client" --adapter "$adapter" --url "ws://127.0.0.1:$port" --agent "$agent" \
      >"$outdir/testee.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      broken="timed out after ${RUN_TIMEOUT}s"
    elif [ "$rc" != 0 ]; then
      broken="the testee client failed (exit status $rc)"
    fi
    # The reports are written when the client opens /updateReports.
    local _
    for _ in $(seq 25); do
      grep -q 'Report generation complete' "$outdir/wstest.log" && break
      sleep 0.2
    done
    if ! grep -q 'Report generation complete' "$outdir/wstest.log"; then
      broken="${broken:+$broken; }the client did not open /updateReports"
      # Ask for the report ourselves, to see which cases ran and how.
      if alive "$fuzzer" && request_reports "$port" "$agent"; then
        for _ in $(seq 50); do
          grep -q 'Report generation complete' "$outdir/wstest.log" && break
          sleep 0.2
        done
      fi
    fi
    if ! alive "$fuzzer"; then
      broken="${broken:+$broken; }wstest fuzzingserver died during the run"
    fi
    stop_pid "$fuzzer"
  fi

  local announced
  announced=$(grep -oE 'will run [0-9]+ test cases' "$outdir/wstest.log" | head -n 1 | grep -oE '[0-9]+' || true)
  if [ -n "$broken" ]; then
    log "$name: FAILED: $broken"
    show_log "$outdir/testee.log"
    show_log "$outdir/wstest.log"
  fi
  if [ ! -s "$outdir/index.json" ]; then
    log "$name: no $outdir/index.json"
    return
  fi

  local sargs=(
    --index "$outdir/index.json" --agent "$agent"
    --title "Autobahn|Testsuite, role $role, adapter $adapter (agent $agent)"
    --results "$REPORTS/$name.json" --summary "$REPORTS/$name-summary.txt"
    --expected "$EXPECTED/$name.json"
    --cases "$CASES" --exclude "$EXCLUDE"
    --counts "$outdir/counts"
  )
  [ -n "$announced" ] && sargs+=(--expect-count "$announced")
  # Never record the results of a broken run as the expectation.
  [ "$UPDATE" = 1 ] && [ -z "$broken" ] && sargs+=(--update)
  local src=0
  python3 "$HERE/summarize.py" "${sargs[@]}" || src=$?
  [ -f "$outdir/counts" ] && RUN_COUNTS=$(cat "$outdir/counts")
  if [ -n "$broken" ]; then
    log "$name: FAILED: $broken"
    RUN_STATUS=error
    RUN_COUNTS="${RUN_COUNTS% *} $(( ${RUN_COUNTS#* } + 1 ))"
  elif [ "$src" = 0 ]; then
    RUN_STATUS=ok
  elif [ "$src" = 1 ]; then
    RUN_STATUS=differ
  else
    RUN_STATUS=error
  fi
  log "$name: summary in $REPORTS/$name-summary.txt, report in $outdir/index.html"
}

# ---- All runs ---------------------------------------------------------------------
log "roles: ${ROLES[*]}; adapters: ${ADAPTER_LIST[*]}; cases: $CASES; excluded: ${EXCLUDE:-none}"
OVERALL=0
PASSED=0
FAILED=0
RESULTS=()
for role in "${ROLES[@]}"; do
  for adapter in "${ADAPTER_LIST[@]}"; do
    echo
    log "=== $role / $adapter ==="
    t0=$SECONDS
    run_one "$role" "$adapter"
    PASSED=$((PASSED + ${RUN_COUNTS% *}))
    FAILED=$((FAILED + ${RUN_COUNTS#* }))
    [ "$RUN_STATUS" = ok ] || OVERALL=1
    RESULTS+=("$(printf '%-8s %-12s %-7s %4ss' "$role" "$adapter" "$RUN_STATUS" "$((SECONDS - t0))")")
  done
done

echo
log "=== overview ==="
printf '%s\n' "${RESULTS[@]}"
if [ "$UPDATE" = 1 ]; then
  log "expected files updated in $EXPECTED (review with git diff)"
fi
# A plain closing line that CI tooling recognises: cases as expected / not.
echo "autobahn: $PASSED passed, $FAILED failed"
exit "$OVERALL"
