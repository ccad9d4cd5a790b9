#!/usr/bin/env bash
# Echo-server benchmark matrix: every server in SERVERS against every cell,
# server pinned to one CPU and loadgen to another, several runs per cell,
# medians, ratios to the best third-party peer, server CPU per message, and
# server memory per idle / busy connection. See bench/README.md.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REL=$TARGET/release

# ---------------------------------------------------------------------------
# Servers under test: "name=command", where {port} is replaced by the port.
# Names starting with "peer-" are the published third-party reference implementations;
# ratios are against the best of them. A server whose program does not exist
# is skipped. To add one of ours, add a line here (and, if it needs building,
# a line to BUILDS below).
SERVERS=(
  "peer-tokio-tungstenite=$REL/peer-tokio-tungstenite --addr 127.0.0.1:{port}"
  "peer-fastwebsockets=$REL/peer-fastwebsockets --addr 127.0.0.1:{port}"
  "peer-tokio-websockets=$REL/peer-tokio-websockets --addr 127.0.0.1:{port}"
  "ws-tokio=$REL/bench-ws-tokio-echo --addr 127.0.0.1:{port} --threads 1"
  "ws-async-std=$REL/bench-ws-async-std-echo --addr 127.0.0.1:{port} --threads 1 --runtime async-std"
  "ws-smol=$REL/bench-ws-async-std-echo --addr 127.0.0.1:{port} --threads 1 --runtime smol"
  "ws-blocking=$REL/bench-ws-blocking-echo --addr 127.0.0.1:{port}"
  "ws-mio=$REL/bench-ws-mio-echo --addr 127.0.0.1:{port} --threads 1"
)
N_DEFAULT_SERVERS=${#SERVERS[@]}
# With --deflate: permessage-deflate offered by loadgen and enabled on the
# servers, against Node's `ws` (the library we are modelled on) with
# perMessageDeflate. Its `ws` package is installed at run time (BUILDS_DEFLATE)
# into bench/peers/node-ws/node_modules (git-ignored).
NODE=$(command -v node || echo /nonexistent/node)
DEFLATE_SERVERS=(
  "peer-node-ws=$NODE $ROOT/bench/peers/node-ws/server.js --addr 127.0.0.1:{port} --deflate"
  "ws-tokio=$REL/bench-ws-tokio-echo --addr 127.0.0.1:{port} --threads 1 --deflate"
  "ws-mio=$REL/bench-ws-mio-echo --addr 127.0.0.1:{port} --threads 1 --deflate"
)
BUILDS_DEFLATE=(
  "cd bench/peers/node-ws && { [ -d node_modules/ws ] || npm install --no-package-lock --no-audit --no-fund; }"
)
# Build commands run (from the workspace root) before the matrix; a failure
# is reported and the affected server is skipped if its program is missing.
BUILDS=(
  "cargo build --release -p bench --bins"
  # Every adapter's example is called echo_server: build and copy one at a
  # time so that each server runs its own binary.
  "cargo build --release -p ws-tokio --example echo_server && cp target/release/examples/echo_server target/release/bench-ws-tokio-echo"
  "cargo build --release -p ws-async-std --example echo_server && cp target/release/examples/echo_server target/release/bench-ws-async-std-echo"
  "cargo build --release -p ws-blocking --example echo_server && cp target/release/examples/echo_server target/release/bench-ws-blocking-echo"
  "cargo build --release -p ws-mio --example echo_server && cp target/release/examples/echo_server target/release/bench-ws-mio-echo"
)

# Cells: CONNS:SIZE:INFLIGHT. INFLIGHT "churn": a new connection per
# message, CONNS at a time (loadgen --churn; the cell's "messages" are
# whole connections: handshake, one echo, close handshake, TCP close).
FULL_CELLS="1:16:1 100:16:1 100:1KiB:1 10:16KiB:1 500:16KiB:1 1:1MiB:1 10:16:16 32:16:churn"
QUICK_CELLS="1:16:1 100:1KiB:1 10:16KiB:1 1:1MiB:1"
BUSY_CELL="500:16KiB:1" # the per-busy-connection memory figure comes from here
DEFLATE_CELLS="1:16:1 100:16:1 100:1KiB:1 10:16KiB:1 500:16KiB:1"
# --clients: client-side cost. One echo server (CLIENT_SERVER), driven in
# turn by loadgen and by our clients (bench/src/bin/client-bench.rs), each
# keeping one message in flight per connection; the table shows messages/s
# and the client's own CPU per message.
CLIENT_SERVER="$REL/bench-ws-mio-echo --addr 127.0.0.1:{port} --threads 1"
CLIENTS=(
  "loadgen=$REL/loadgen"
  "ws-tokio=$REL/client-bench --client tokio"
  "ws-mio=$REL/client-bench --client mio"
)
CLIENT_CELLS="1:16:1 100:16:1 100:1KiB:1 10:16KiB:1"

usage() {
  cat <<EOF
usage: bench/run.sh [options]

  --quick               smoke test: ${QUICK_CELLS// /, }; 1 run, 1.5 s windows,
                        1,000 idle connections
  --runs N              runs per cell, median reported       [3]
  --duration S          measured seconds per run             [4]
  --warmup S            unmeasured seconds before that       [1]
  --cells "C:S:K ..."   cells as CONNS:SIZE:INFLIGHT (INFLIGHT "churn": a
                        new connection per message, CONNS at a time)
                                                       [${FULL_CELLS}]
  --text                text messages instead of binary
  --clients             client-side cost instead of the server matrix: one
                        server (ws-mio's echo server) driven by loadgen, the
                        ws-tokio client and the ws-mio client in turn
                        (cells ${CLIENT_CELLS// /, }); msg/s and client
                        CPU µs per message
  --deflate             permessage-deflate on: the servers in DEFLATE_SERVERS
                        (Node's ws, ws-tokio, ws-mio with --deflate), loadgen
                        --deflate, cells ${DEFLATE_CELLS// /, }; memory idle
                        and after one 16 KiB message per connection
  --only a,b            run only these servers (by name)
  --server NAME=CMD     add a server ({port} is substituted); repeatable
  --idle-conns N        connections for the idle-memory run  [10000]
  --no-memory           skip the idle-memory run
  --no-build            do not run the cargo builds first
  --loadgen-args "..."  extra loadgen arguments (e.g. --spin)
  --nice N              run server and loadgen each in its own session with
                        scheduler-autogroup nice N (e.g. -10; needs root):
                        protects the numbers from other load   [0: off]
  --quiet-wait S        before each run, wait up to S seconds for other
                        processes to use < 10% of a core (0: don't)  [20; quick: 5]
  --server-cpu N        CPU the server is pinned to          [0]
  --loadgen-cpu N       CPU loadgen is pinned to             [1]
  --port N              first port to use                    [19100]
  --out DIR             results directory  [target/bench-results/DATE]
EOF
}

RUNS="" DURATION="" WARMUP="" CELLS="" IDLE_CONNS="" MEMORY=1 BUILD=1
TEXT="" DEFLATE=0 CLIENT_MODE=0 ONLY="" LOADGEN_ARGS="" QUIET_WAIT="" NICE=0 SERVER_CPU=0 LOADGEN_CPU=1 PORT=19100 OUT="" QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --runs) RUNS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --cells) CELLS=$2; shift ;;
    --text) TEXT="--text" ;;
    --deflate) DEFLATE=1 ;;
    --clients) CLIENT_MODE=1 ;;
    --only) ONLY=$2; shift ;;
    --server) SERVERS+=("$2"); shift ;;
    --idle-conns) IDLE_CONNS=$2; shift ;;
    --no-memory) MEMORY=0 ;;
    --no-build) BUILD=0 ;;
    --loadgen-args) LOADGEN_ARGS=$2; shift ;;
    --quiet-wait) QUIET_WAIT=$2; shift ;;
    --nice) NICE=$2; shift ;;
    --server-cpu) SERVER_CPU=$2; shift ;;
    --loadgen-cpu) LOADGEN_CPU=$2; shift ;;
    --port) PORT=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$DEFLATE" = 1 ]; then
  SERVERS=("${DEFLATE_SERVERS[@]}" "${SERVERS[@]:$N_DEFAULT_SERVERS}")
  BUILDS+=("${BUILDS_DEFLATE[@]}")
  [ -z "$CELLS" ] && [ "$QUICK" = 0 ] && CELLS=$DEFLATE_CELLS
  LOADGEN_ARGS="$LOADGEN_ARGS --deflate"
fi
# Defaults (full or quick); explicit options win. With --nice the runs are
# mostly protected from other load, so waiting for quiet matters less.
[ "$NICE" != 0 ] && : "${QUIET_WAIT:=2}"
if [ "$QUICK" = 1 ]; then
  : "${CELLS:=$QUICK_CELLS}" "${RUNS:=1}" "${DURATION:=1.5}" "${WARMUP:=0.5}" "${IDLE_CONNS:=1000}" "${QUIET_WAIT:=5}"
else
  : "${CELLS:=$FULL_CELLS}" "${RUNS:=3}" "${DURATION:=4}" "${WARMUP:=1}" "${IDLE_CONNS:=10000}" "${QUIET_WAIT:=20}"
fi
OUT=${OUT:-$TARGET/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
RAW=$OUT/raw.jsonl
: > "$RAW"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# --- build ----------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  for b in "${BUILDS[@]}"; do
    log "build: $b"
    if ! (cd "$ROOT" && bash -c "$b") > "$OUT/logs/build.log" 2>&1; then
      log "build failed (continuing; see $OUT/logs/build.log): $b"
      tail -5 "$OUT/logs/build.log" >&2
    fi
  done
fi
LOADGEN=$REL/loadgen
if [ ! -x "$LOADGEN" ]; then
  echo "run.sh: $LOADGEN not found; build it with: cargo build --release -p bench" >&2
  exit 1
fi

# --- environment checks -----------------------------------------------------
for tool in taskset ss timeout awk setsid; do
  command -v "$tool" > /dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done
NCPU=$(nproc)
if [ "$SERVER_CPU" -ge "$NCPU" ] || [ "$LOADGEN_CPU" -ge "$NCPU" ]; then
  echo "run.sh: only $NCPU CPUs; adjust --server-cpu/--loadgen-cpu" >&2
  exit 1
fi
NEED_FDS=$((IDLE_CONNS + 200))
[ "$(ulimit -n)" -lt "$NEED_FDS" ] && ulimit -n "$NEED_FDS" 2> /dev/null
if [ "$MEMORY" = 1 ] && [ "$(ulimit -n)" -lt "$NEED_FDS" ]; then
  log "open-file limit $(ulimit -n) < $NEED_FDS: idle run reduced"
  IDLE_CONNS=$(($(ulimit -n) - 200))
fi
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }'; then
  log "warning: load average is $LOAD1 before starting; numbers may be noisy"
fi

# --- server selection -------------------------------------------------------
NAMES=() CMDS=()
for entry in "${SERVERS[@]}"; do
  name=${entry%%=*} cmd=${entry#*=}
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
  prog=${cmd%% *}
  if [ ! -x "$prog" ]; then
    log "skip $name: $prog not found"
    continue
  fi
  NAMES+=("$name") CMDS+=("$cmd")
done
if [ ${#NAMES[@]} -eq 0 ]; then
  echo "run.sh: no servers to run" >&2
  exit 1
fi

# --- process handling (only what we started, by PID) -------------------------
SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2> /dev/null
  for _ in $(seq 1 30); do
    kill -0 "$SERVER_PID" 2> /dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2> /dev/null
  wait "$SERVER_PID" 2> /dev/null
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

NEXT_PORT=$PORT
# start_server NAME CMD LOGTAG: sets SERVER_PID and SERVER_PORT
start_server() {
  local name=$1 cmd=$2 tag=$3 port
  for _ in $(seq 1 50); do
    port=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
    [ "$NEXT_PORT" -gt $((PORT + 2000)) ] && NEXT_PORT=$PORT
    [ -z "$(ss -Htan "sport = :$port")" ] && break
  done
  local -a argv
  read -r -a argv <<< "${cmd//\{port\}/$port}"
  if [ "$NICE" != 0 ]; then
    # Alone in a new session, hence in its own autogroup, whose nice we set.
    # (The nice is set once it listens: before its setsid ran, the child
    # would still share our autogroup.)
    setsid taskset -c "$SERVER_CPU" "${argv[@]}" > "$OUT/logs/$name.$tag.log" 2>&1 &
    SERVER_PID=$!
  else
    taskset -c "$SERVER_CPU" "${argv[@]}" > "$OUT/logs/$name.$tag.log" 2>&1 &
    SERVER_PID=$!
  fi
  SERVER_PORT=$port
  for _ in $(seq 1 100); do
    if ! kill -0 "$SERVER_PID" 2> /dev/null; then
      log "$name exited at startup (see $OUT/logs/$name.$tag.log)"
      wait "$SERVER_PID" 2> /dev/null
      SERVER_PID=""
      return 1
    fi
    if [ -n "$(ss -Hltn "sport = :$port")" ]; then
      if [ "$NICE" != 0 ]; then
        if [ "$(cut -d' ' -f1 "/proc/$SERVER_PID/autogroup")" = "$(cut -d' ' -f1 /proc/self/autogroup)" ]; then
          log "$name did not get its own session; not changing its priority"
        else
          echo "$NICE" > "/proc/$SERVER_PID/autogroup" 2> /dev/null ||
            log "cannot set autogroup nice for $name"
        fi
      fi
      return 0
    fi
    sleep 0.05
  done
  log "$name is not listening on $port after 5 s"
  stop_server
  return 1
}

# Busy CPU of the whole machine over 0.5 s, in % of one core (no server of
# ours is running when this is called, so it is all other processes).
machine_busy() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 0.5
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    busy = (y[2]+y[3]+y[4]+y[7]+y[8]) - (x[2]+x[3]+x[4]+x[7]+x[8])
    all = 0; for (i = 2; i <= 9; i++) all += y[i] - x[i]
    printf "%d", (all > 0) ? 100 * busy / all * '"$NCPU"' : 0 }'
}
# wait_quiet: wait until other processes are idle, at most --quiet-wait
# seconds per run and 10 times that over the whole matrix.
QUIET_SPENT=0
wait_quiet() {
  [ "$QUIET_WAIT" = 0 ] && return 0
  local start deadline busy
  start=$(date +%s)
  deadline=$((start + QUIET_WAIT))
  [ $((QUIET_SPENT + QUIET_WAIT)) -gt $((10 * QUIET_WAIT)) ] && deadline=$start
  busy=$(machine_busy)
  while [ "$busy" -ge 10 ] && [ "$(date +%s)" -lt "$deadline" ]; do
    busy=$(machine_busy)
  done
  QUIET_SPENT=$((QUIET_SPENT + $(date +%s) - start))
  [ "$busy" -ge 10 ] && log "machine busy (other processes use ${busy}% of a core); running anyway"
  return 0
}

# run_loadgen NAME TAG LOADGEN-ARGS...: appends one JSON line to $RAW
run_loadgen() {
  local name=$1 tag=$2
  shift 2
  local limit out json
  limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 90 }')
  local -a pre=()
  [ "$NICE" != 0 ] && pre=(setsid)
  local -a prio=()
  [ "$NICE" != 0 ] && prio=(--autogroup-nice "$NICE")
  out=$(timeout -k 5 "$limit" "${pre[@]}" taskset -c "$LOADGEN_CPU" "$LOADGEN" "${prio[@]}" \
    --url "ws://127.0.0.1:$SERVER_PORT/" --server-pid "$SERVER_PID" \
    --warmup "$WARMUP" --duration "$DURATION" $TEXT $LOADGEN_ARGS "$@" \
    2> "$OUT/logs/loadgen.$name.$tag.err")
  local rc=$?
  json=$(printf '%s\n' "$out" | grep '^{' | tail -1)
  if [ -z "$json" ]; then
    json="{\"error\":\"loadgen exit $rc, no output\"}"
  fi
  # prefix with our own keys
  printf '{"server":"%s","tag":"%s",%s\n' "$name" "$tag" "${json#\{}" >> "$RAW"
  printf '%s\n' "$out" | grep -v '^{' | sed "s/^/    /" >&2
  if [ $rc -ne 0 ]; then
    log "$name $tag: loadgen failed (exit $rc): $(cat "$OUT/logs/loadgen.$name.$tag.err" | tail -2)"
  fi
  return $rc
}

# --- client mode ----------------------------------------------------------------
if [ "$CLIENT_MODE" = 1 ]; then
  [ "$CELLS" = "$FULL_CELLS" ] || [ "$CELLS" = "$QUICK_CELLS" ] && CELLS=$CLIENT_CELLS
  CRAW=$OUT/clients.jsonl
  : > "$CRAW"
  log "client mode: server ${CLIENT_SERVER%% *}; cells $CELLS; runs $RUNS"
  for run in $(seq 1 "$RUNS"); do
    for cell in $CELLS; do
      IFS=: read -r conns size inflight <<< "$cell"
      for entry in "${CLIENTS[@]}"; do
        cname=${entry%%=*} ccmd=${entry#*=}
        [ -x "${ccmd%% *}" ] || { log "skip client $cname: ${ccmd%% *} not found"; continue; }
        wait_quiet
        start_server "server" "$CLIENT_SERVER" "client-$cname-$conns-$size.r$run" || continue
        log "client $cname  conns=$conns size=$size  run $run/$RUNS"
        limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 60 }')
        read -r -a argv <<< "$ccmd"
        out=$(timeout -k 5 "$limit" taskset -c "$LOADGEN_CPU" "${argv[@]}" \
          --url "ws://127.0.0.1:$SERVER_PORT/" --conns "$conns" --size "$size" \
          --warmup "$WARMUP" --duration "$DURATION" 2> "$OUT/logs/client.$cname.$cell.r$run.err")
        stop_server
        printf '%s\n' "$out" | grep -v '^{' | sed "s/^/    /" >&2
        json=$(printf '%s\n' "$out" | grep '^{' | tail -1)
        [ -z "$json" ] && json='{"error":"no output"}'
        printf '{"clientname":"%s","cell":"%s",%s\n' "$cname" "$cell" "${json#\{}" >> "$CRAW"
      done
    done
  done
  SUMMARY=$OUT/summary.md
  jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$2"; }
  while IFS= read -r line; do
    name=$(jget clientname "$line") cell=$(jget cell "$line") err=$(jget error "$line")
    mps=$(jget msgs_per_sec "$line") us=$(jget client_cpu_us_per_msg "$line")
    if [ -z "$us" ] && [ -n "$mps" ]; then # loadgen: from its CPU share
      us=$(awk -v p="$(jget loadgen_cpu_pct "$line")" -v m="$mps" 'BEGIN { if (m > 0) printf "%.3f", p * 1e4 / m }')
    fi
    [ "$err" = "null" ] && err=""
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$cell" "$mps" "$us" "${err:+error}"
  done < "$CRAW" | awk -F'\t' -v cells="$CELLS" -v names="$(printf '%s ' "${CLIENTS[@]%%=*}")" -v runs="$RUNS" -v dur="$DURATION" \
    -v server="${CLIENT_SERVER%% *}" '
function median(key,   n, i, j, t, a) {
  n = split(vals[key], a, " "); if (n == 0 || vals[key] == "") return ""
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { if (v == "") return; vals[key] = (vals[key] == "") ? v : vals[key] " " v }
function cellname(c,   p) { split(c, p, ":"); return p[1] " × " p[2] }
{ if ($5 != "") { err[$1 "|" $2]++; next } add($1 "|" $2 "|mps", $3); add($1 "|" $2 "|us", $4) }
END {
  ns = split(names, S, " "); nc = split(cells, C, " ")
  printf "### Client cost: messages/s and client CPU µs per message (median of %s run%s, %ss; server: %s)\n\n", runs, (runs > 1) ? "s" : "", dur, server
  hdr = "| cell |"; sep = "|---|"
  for (s = 1; s <= ns; s++) { hdr = hdr " " S[s] " |"; sep = sep "---:|" }
  print hdr; print sep
  for (c = 1; c <= nc; c++) {
    row = "| " cellname(C[c]) " |"
    for (s = 1; s <= ns; s++) {
      k = S[s] "|" C[c]; m = median(k "|mps"); u = median(k "|us")
      row = row " " ((m == "") ? ((err[k] > 0) ? "error" : "–") : sprintf("%.0f msg/s, %.2f µs", m, u)) " |"
    }
    print row
  }
}' > "$SUMMARY"
  echo
  cat "$SUMMARY"
  log "raw results: $CRAW; summary: $SUMMARY"
  grep -q '"error":"' "$CRAW" && { log "some client runs failed"; exit 1; }
  exit 0
fi

# --- the matrix ---------------------------------------------------------------
START=$(date +%s)
log "servers: ${NAMES[*]}"
log "cells: $CELLS; runs: $RUNS; warmup ${WARMUP}s + ${DURATION}s; server CPU $SERVER_CPU, loadgen CPU $LOADGEN_CPU; nice $NICE"
log "results: $OUT"
for run in $(seq 1 "$RUNS"); do
  for cell in $CELLS; do
    IFS=: read -r conns size inflight <<< "$cell"
    for i in "${!NAMES[@]}"; do
      name=${NAMES[$i]}
      tag="$conns-$size-$inflight.r$run"
      log "$name  conns=$conns size=$size inflight=$inflight  run $run/$RUNS"
      wait_quiet
      if [ "$inflight" = churn ]; then
        mode=(--churn)
      else
        mode=(--inflight "$inflight")
      fi
      if start_server "$name" "${CMDS[$i]}" "$tag"; then
        run_loadgen "$name" "$tag" --conns "$conns" --size "$size" "${mode[@]}" \
          --label "$cell"
        stop_server
      else
        printf '{"server":"%s","tag":"%s","label":"%s","error":"server did not start"}\n' \
          "$name" "$tag" "$cell" >> "$RAW"
      fi
    done
  done
done

if [ "$MEMORY" = 1 ]; then
  for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    log "$name  idle memory: $IDLE_CONNS connections"
    wait_quiet
    if start_server "$name" "${CMDS[$i]}" "idle"; then
      sleep 0.2
      # warmup = settle time before the RSS sample; duration = extra hold
      WARMUP_SAVED=$WARMUP DURATION_SAVED=$DURATION
      WARMUP=2 DURATION=0.5
      run_loadgen "$name" "idle" --idle --conns "$IDLE_CONNS" --label "idle"
      WARMUP=$WARMUP_SAVED DURATION=$DURATION_SAVED
      stop_server
    fi
    if [ "$DEFLATE" = 1 ]; then
      # Compressors and inflaters may be allocated lazily: measure again
      # after one compressible 16 KiB message on every connection.
      log "$name  memory after one message: $IDLE_CONNS connections"
      wait_quiet
      if start_server "$name" "${CMDS[$i]}" "idle-echo"; then
        sleep 0.2
        WARMUP_SAVED=$WARMUP DURATION_SAVED=$DURATION
        WARMUP=2 DURATION=0.5
        run_loadgen "$name" "idle-echo" --idle --idle-echo --size 16KiB --text \
          --conns "$IDLE_CONNS" --label "idle-echo"
        WARMUP=$WARMUP_SAVED DURATION=$DURATION_SAVED
        stop_server
      fi
    fi
  done
fi
log "matrix done in $(($(date +%s) - START)) s"

# --- summary ------------------------------------------------------------------
# Flatten the JSON lines (flat objects written by loadgen) into TSV.
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$2"; }
TSV=$OUT/runs.tsv
printf 'server\tcell\tmode\tmps\tcpu_us\tp50\tp99\tsrv_pct\tlg_pct\trss_end_b\terror\tother_pct\n' > "$TSV"
while IFS= read -r line; do
  err=$(jget error "$line")
  [ "$err" = "null" ] && err=""
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$(jget server "$line")" "$(jget label "$line")" "$(jget mode "$line")" \
    "$(jget msgs_per_sec "$line")" "$(jget server_cpu_us_per_msg "$line")" \
    "$(jget lat_p50_us "$line")" "$(jget lat_p99_us "$line")" \
    "$(jget server_cpu_pct "$line")" "$(jget loadgen_cpu_pct "$line")" \
    "$(jget rss_per_conn_end_b "$line")" "${err:+error}" "$(jget other_cpu_pct "$line")" >> "$TSV"
done < "$RAW"

SUMMARY=$OUT/summary.md
awk -F'\t' -v names="${NAMES[*]}" -v cells="$CELLS" -v runs="$RUNS" \
  -v dur="$DURATION" -v warm="$WARMUP" -v idle="$IDLE_CONNS" -v busy="$BUSY_CELL" \
  -v memory="$MEMORY" -v kind="${TEXT:+text}" -v deflate="$DEFLATE" \
  -v settings="server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU, autogroup nice $NICE, loadgen args '${LOADGEN_ARGS:-none}', $(nproc) CPUs, kernel $(uname -r)" '
function median(key,   n, i, j, t, a) {
  n = split(vals[key], a, " ")
  if (n == 0 || vals[key] == "") return ""
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function spread(key,   n, i, a, lo, hi, m) {
  n = split(vals[key], a, " ")
  if (n < 2) return ""
  lo = hi = a[1]
  for (i = 2; i <= n; i++) { if (a[i] + 0 < lo + 0) lo = a[i]; if (a[i] + 0 > hi + 0) hi = a[i] }
  m = median(key)
  return (m > 0) ? sprintf(" ±%.0f%%", 50 * (hi - lo) / m) : ""
}
function lowest(key,   n, i, a, lo) {
  n = split(vals[key], a, " ")
  if (n == 0 || vals[key] == "") return ""
  lo = a[1]
  for (i = 2; i <= n; i++) if (a[i] + 0 < lo + 0) lo = a[i]
  return lo
}
function kib(x) { return (x < 10240) ? sprintf("%.2f KiB", x / 1024) : sprintf("%.1f KiB", x / 1024) }
function k(x) { return (x >= 1e6) ? sprintf("%.2fM", x / 1e6) : (x >= 1e4) ? sprintf("%.1fk", x / 1e3) : sprintf("%.0f", x) }
function cellname(c,   p) { split(c, p, ":"); if (p[3] == "churn") return "churn, " p[1] " at a time (per connection)"; return p[1] " × " p[2] ((p[3] > 1) ? ", " p[3] " in flight" : "") }
function add(key, v) { if (v == "" || v == "null") return; vals[key] = (vals[key] == "") ? v : vals[key] " " v }
NR == 1 { next }
{
  if ($11 != "") { errors[$1 "|" $2]++; next }
  if ($3 == "idle") { add($1 "|" (($2 == "idle-echo") ? "idle1" : "idle") "|rss", $10); next }
  add($1 "|" $2 "|mps", $4); add($1 "|" $2 "|cpu", $5)
  add($1 "|" $2 "|p50", $6); add($1 "|" $2 "|p99", $7)
  add($1 "|" $2 "|srv", $8); add($1 "|" $2 "|lg", $9)
  nruns++; if ($12 != "" && $12 + 0 > 15) { noisy++; add($1 "|" $2 "|noisy", 1) }
  if ($2 == busy) add($1 "|busy|rss", $10)
}
END {
  ns = split(names, S, " "); nc = split(cells, C, " ")
  printf "### Echo throughput: messages/s (median of %s run%s, %ss after %ss warmup, %s%s)\n\n", runs, (runs > 1) ? "s" : "", dur, warm, (kind == "") ? "binary" : kind, (deflate == 1) ? ", permessage-deflate" : ""
  printf "Settings: %s.\n\n", settings
  printf "Each entry: median msg/s, ratio to the best peer in that cell, spread of the runs (±half the range).\n"
  printf "`*`: the server used < 90%% of its core (latency- or client-bound, not server-bound). "
  printf "`!`: in some run other processes on the machine used > 15%% of a core (noisy).\n\n"
  if (noisy > 0) printf "**Warning:** %d of %d runs were disturbed by other processes (see other_pct in runs.tsv).\n\n", noisy, nruns
  hdr = "| cell |"; sep = "|---|"
  for (s = 1; s <= ns; s++) { hdr = hdr " " S[s] " |"; sep = sep "---:|" }
  print hdr; print sep
  for (c = 1; c <= nc; c++) {
    best = 0
    for (s = 1; s <= ns; s++) if (S[s] ~ /^peer-/) { m = median(S[s] "|" C[c] "|mps"); if (m != "" && m + 0 > best) best = m + 0 }
    row = "| " cellname(C[c]) " |"
    for (s = 1; s <= ns; s++) {
      key = S[s] "|" C[c]; m = median(key "|mps")
      if (m == "") { row = row ((errors[key] > 0) ? " error |" : " – |"); continue }
      r = (best > 0) ? sprintf(" (%.2f)", m / best) : ""
      flag = (median(key "|srv") != "" && median(key "|srv") + 0 < 90) ? "*" : ""
      if (vals[key "|noisy"] != "") flag = flag "!"
      row = row " " k(m) r spread(key "|mps") flag ((errors[key] > 0) ? " +" errors[key] " failed" : "") " |"
    }
    print row
  }
  printf "\n### Server CPU per message (µs, utime+stime from /proc/PID/stat over the window; median)\n\n"
  print hdr; print sep
  for (c = 1; c <= nc; c++) {
    row = "| " cellname(C[c]) " |"
    for (s = 1; s <= ns; s++) { m = median(S[s] "|" C[c] "|cpu"); row = row " " ((m == "") ? "–" : sprintf("%.2f", m)) " |" }
    print row
  }
  if (runs > 1) {
    printf "\n### Server CPU per message, lowest of the runs (µs; ratio to the lowest peer in that cell)\n\n"
    printf "On a shared VM a run can fall into a slow phase for its whole window (every server then needs ~30%% more CPU per message); the lowest run of each server is the least disturbed one.\n\n"
    print hdr; print sep
    for (c = 1; c <= nc; c++) {
      best = 0
      for (s = 1; s <= ns; s++) if (S[s] ~ /^peer-/) { m = lowest(S[s] "|" C[c] "|cpu"); if (m != "" && (best == 0 || m + 0 < best)) best = m + 0 }
      row = "| " cellname(C[c]) " |"
      for (s = 1; s <= ns; s++) {
        m = lowest(S[s] "|" C[c] "|cpu")
        row = row " " ((m == "") ? "–" : sprintf("%.2f", m) ((best > 0) ? sprintf(" (%.2f)", m / best) : "")) " |"
      }
      print row
    }
  }
  printf "\n### Round-trip latency p50 / p99 (µs, median of runs)\n\n"
  print hdr; print sep
  for (c = 1; c <= nc; c++) {
    row = "| " cellname(C[c]) " |"
    for (s = 1; s <= ns; s++) {
      a = median(S[s] "|" C[c] "|p50"); b = median(S[s] "|" C[c] "|p99")
      row = row " " ((a == "") ? "–" : sprintf("%.0f / %.0f", a, b)) " |"
    }
    print row
  }
  printf "\n### Loadgen CPU (%% of its core, median) — near 100 means the client may be the limit\n\n"
  print hdr; print sep
  for (c = 1; c <= nc; c++) {
    row = "| " cellname(C[c]) " |"
    for (s = 1; s <= ns; s++) { m = median(S[s] "|" C[c] "|lg"); row = row " " ((m == "") ? "–" : sprintf("%.0f", m)) " |" }
    print row
  }
  printf "\n### Server memory (RSS from /proc/PID/status)\n\n"
  if (deflate == 1) {
    printf "| server | per idle conn (%s conns) | after one 16 KiB message each | per busy conn (%s) |\n|---|---:|---:|---:|\n", idle, cellname(busy)
  } else {
    printf "| server | per idle conn (%s conns) | per busy conn (%s) |\n|---|---:|---:|\n", idle, cellname(busy)
  }
  for (s = 1; s <= ns; s++) {
    a = (memory == 1) ? median(S[s] "|idle|rss") : ""; b = median(S[s] "|busy|rss"); e = (memory == 1) ? median(S[s] "|idle1|rss") : ""
    if (deflate == 1)
      printf "| %s | %s | %s | %s |\n", S[s], (a == "") ? "–" : kib(a), (e == "") ? "–" : kib(e), (b == "") ? "–" : kib(b)
    else
      printf "| %s | %s | %s |\n", S[s], (a == "") ? "–" : kib(a), (b == "") ? "–" : kib(b)
  }
}' "$TSV" > "$SUMMARY"

echo
cat "$SUMMARY"
echo
log "raw results: $RAW; per-run table: $TSV; summary: $SUMMARY"
if grep -q '"error":"' "$RAW"; then
  log "some runs failed:"
  grep '"error":"' "$RAW" | sed 's/^/    /' >&2
  exit 1
fi
exit 0
