#!/usr/bin/env bash
# gateway_vs_nginx.sh: Sluice's end-to-end requests/s next to nginx returning
# a constant, on the same machine, in the same run.
#
# Requirement: "With wrk on the same machine, keep-alive: report Sluice's
# requests/s end to end on a sim model with zero latency and max_batch_size 64
# next to nginx returning a constant on the same machine in the same run.
# Target: at least 0.7 of nginx."
#
# What it does
#   1. Installs wrk and nginx-light with apt only if `wrk`/`nginx` are missing.
#   2. Builds build/src/app/sluice if SLUICE_BIN is not given and it is missing.
#   3. Starts nginx (worker_processes 1, access_log off, keep-alive without a
#      per-connection request cap) answering POST /v1/inference with a
#      constant JSON body shaped like Sluice's answer.
#   4. Starts `sluice serve --port 0` on a copy of config/sluice.yaml changed
#      to: io_threads=$SLUICE_IO_THREADS, one sim device with zero latency
#      (fixed_latency_us 0, per_item_latency_us 0, jitter 0),
#      max_batch_size 64, max_batch_delay_us 0, queue_capacity 100000;
#      request log REQUEST_LOG (default sqlite, the bundled default, in the
#      temp dir; memory = no durable log: the gateway's own cost only).
#   5. Checks that each server answers one request with 200, warms each up
#      once (WARMUP), then runs ROUNDS rounds, each "nginx then sluice", with
#      the same wrk command and Lua script (bench/wrk_inference.lua: POST
#      /v1/inference, JSON body, paid-tier demo key; nginx ignores both).
#   6. Prints a markdown report on stdout: the median req/s of each server,
#      the medians of the per-round p50/p99, the non-2xx and socket-error
#      totals, the per-round figures with CPU use, and the last line
#      `ratio sluice/nginx = X.XX (target >= 0.70)` (ratio of the medians).
#
# CPU pinning (fairness on a 2-core machine): the server under test runs on
# CPU $SERVER_CPU (default 0) with `taskset`, wrk on CPU $CLIENT_CPU
# (default 1), for nginx and for Sluice alike. Both servers stay up for the
# whole run; the idle one should use no CPU. Other processes on the machine
# are not pinned away, so the report shows, for every run, the CPU used by
# the server, by wrk and by everything else: a saturated client (wrk near
# 100%) or a busy machine (others well above 0%) is flagged in the report.
# With fewer than 2 CPUs nothing is pinned and the report says so.
#
# Usage
#   bench/gateway_vs_nginx.sh [--save] [--only nginx|sluice|both]
#       [--duration 10s] [--connections 64] [--threads 1] [--rounds 3]
#       [--io-threads 1] [--warmup 3s] [--bin PATH] [--wrk-count lua|native]
#       [--strict]
#
# Environment (flags win): SLUICE_BIN (default build/src/app/sluice), DURATION
# (10s), CONNECTIONS (64), WRK_THREADS (1), ROUNDS (3), SLUICE_IO_THREADS (1),
# WARMUP (3s), ONLY (both), SERVER_CPU (0), CLIENT_CPU (1), STRICT (0),
# KEEP_TMP (0; 1 keeps the temp dir with configs and logs), IDLE_WAIT (0: with
# N > 0, wait up to N s before each run for other processes to go quiet),
# WRK_COUNT (lua: count non-200 in the Lua response() callback; native: no
# Lua callback per answer, wrk's own count of statuses > 399; lighter on the
# client core), TRACE_RATIO ("": tracing off; 0..1: a `tracing:` section
# exporting spans, sampled at that ratio, to bench/otlp_sink.mjs, a node
# receiver that counts them, pinned to the client's CPU).
# The cost of tracing: run once without TRACE_RATIO and once with it, and
# compare the two runs' sluice/nginx ratios.
# With defaults it runs for about 1.5 minutes (plus a build if needed).
#
# Exit status: 0 on success; 2 if any run saw non-2xx answers or socket
# errors (the report is still printed, and saved with --save); 3 if --strict
# (STRICT=1) and the ratio is below the target, 4 if --strict and the run
# was noisy (other processes used >= 10% of a CPU); 1 on a setup failure.
# --save also writes the report to bench/results/gateway_vs_nginx-<date>.md.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

DEFAULT_SLUICE_BIN=build/src/app/sluice
SLUICE_BIN=${SLUICE_BIN:-}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-3}
SLUICE_IO_THREADS=${SLUICE_IO_THREADS:-1}
WARMUP=${WARMUP:-3s}
ONLY=${ONLY:-both}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}
IDLE_WAIT=${IDLE_WAIT:-0}
WRK_COUNT=${WRK_COUNT:-lua}
TRACE_RATIO=${TRACE_RATIO:-}
SINK_PID=""
SAVE=0
TARGET=0.70
LUA_SCRIPT="$REPO_ROOT/bench/wrk_inference.lua"
BASE_CONFIG="$REPO_ROOT/config/sluice.yaml"

# The bundled config without its embedding model (this bench measures the
# completions model alone).
without_embedding_model() {
  awk '/^  - name: sluice-sim-embed/ { skip = 1; next }
       skip && /^[^[:space:]#]/ { skip = 0 }
       !skip { print }' "$1"
}
# The request log: sqlite (the bundled default, a file in the temp dir) or
# memory (no durable log: the gateway's own cost only).
REQUEST_LOG=${REQUEST_LOG:-sqlite}
NGINX_BODY='{"request_id":"req_0000000000000000","output":"ok","metadata":{"tokens_used":3,"latency_ms":0,"model_version":"const"}}'
REQUEST_BODY='{"model":"sluice-sim-small","input":"hello batching world","parameters":{"max_tokens":8}}'
API_KEY=sk-paid-demo-0001

usage() { sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --save) SAVE=1 ;;
    --strict) STRICT=1 ;;
    --only) ONLY=${2:?--only needs a value}; shift ;;
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
    --threads) WRK_THREADS=${2:?--threads needs a value}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --wrk-count) WRK_COUNT=${2:?--wrk-count needs a value}; shift ;;
    --io-threads) SLUICE_IO_THREADS=${2:?--io-threads needs a value}; shift ;;
    --warmup) WARMUP=${2:?--warmup needs a value}; shift ;;
    --bin) SLUICE_BIN=${2:?--bin needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# Seconds in a wrk duration ("10", "10s", "2m"); dies on anything else.
to_seconds() {
  local d=$1
  case "$d" in
    *[!0-9smh]*|'') die "bad duration '$d' (use e.g. 10s, 2m)" ;;
    *s) echo $(( ${d%s} )) ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *h) echo $(( ${d%h} * 3600 )) ;;
    *) echo $(( d )) ;;
  esac
}

case "$WRK_COUNT" in lua|native) export WRK_COUNT ;; *) die "WRK_COUNT must be lua or native (got '$WRK_COUNT')" ;; esac
case "$ONLY" in nginx|sluice|both) ;; *) die "ONLY must be nginx, sluice or both (got '$ONLY')" ;; esac
for v in CONNECTIONS WRK_THREADS ROUNDS SLUICE_IO_THREADS SERVER_CPU CLIENT_CPU IDLE_WAIT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
(( ROUNDS >= 1 )) || die "ROUNDS must be >= 1"
(( CONNECTIONS >= WRK_THREADS && WRK_THREADS >= 1 )) || die "need CONNECTIONS >= WRK_THREADS >= 1"
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
(( DURATION_S >= 1 )) || die "DURATION must be at least 1s"
run_nginx=0; run_sluice=0
[[ $ONLY != sluice ]] && run_nginx=1
[[ $ONLY != nginx ]] && run_sluice=1

# ---------------------------------------------------------------- tools
ensure_tools() {
  local missing=0
  command -v wrk >/dev/null 2>&1 || missing=1
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing=1
  if (( missing )); then
    log "wrk or nginx missing: apt-get install -y --no-upgrade wrk nginx-light"
    if ! DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-upgrade wrk nginx-light >&2; then
      log "install failed; running apt-get update and retrying"
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update >&2
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-upgrade wrk nginx-light >&2
    fi
  fi
  command -v wrk >/dev/null 2>&1 || die "wrk not found after install"
  NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  [[ -x $NGINX_BIN ]] || die "nginx not found after install"
  command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) not found"
}
ensure_tools

NCPU=$(nproc)
PIN=1
if (( NCPU < 2 )); then
  PIN=0
  log "warning: only $NCPU CPU; server and wrk are not pinned"
elif (( SERVER_CPU >= NCPU || CLIENT_CPU >= NCPU || SERVER_CPU == CLIENT_CPU )); then
  die "SERVER_CPU/CLIENT_CPU must be two different CPUs below $NCPU"
fi
# Command prefixes. Servers are started as `"${SERVER_PIN[@]}" server ... &`
# straight from this shell (no function or subshell in between), and taskset
# execs its command, so $! is the server's own pid.
SERVER_PIN=()
CLIENT_PIN=()
if (( PIN )); then
  SERVER_PIN=(taskset -c "$SERVER_CPU")
  CLIENT_PIN=(taskset -c "$CLIENT_CPU")
fi

# ---------------------------------------------------------------- sluice binary
if (( run_sluice )); then
  if [[ -z $SLUICE_BIN ]]; then
    SLUICE_BIN=$DEFAULT_SLUICE_BIN
    if [[ ! -x $SLUICE_BIN ]]; then
      log "$SLUICE_BIN missing: building it (Release)"
      timeout 3600 cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
      timeout 3600 ninja -C build sluice >&2
    fi
  fi
  [[ -x $SLUICE_BIN ]] || die "SLUICE_BIN '$SLUICE_BIN' is not an executable file"
  timeout 10 "$SLUICE_BIN" --help >/dev/null 2>&1 || die "'$SLUICE_BIN --help' failed"
  SLUICE_BIN=$(cd "$(dirname "$SLUICE_BIN")" && pwd)/$(basename "$SLUICE_BIN")
fi

# ---------------------------------------------------------------- temp dir and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
NGINX_PID=""          # nginx master (daemon off: the process we started)
NGINX_WRAPPER_PID=""  # only set if the pid file disagrees with $!
SLUICE_PID=""

# Stops one process we started: TERM, up to 5 s, then KILL.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Children of a process (the nginx workers of the master we started).
child_pids() {
  cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || true
}

cleanup() {
  local rc=$? workers w
  trap - EXIT INT TERM
  if [[ -n $NGINX_PID ]]; then
    workers=$(child_pids "$NGINX_PID")
    stop_pid "$NGINX_PID"
    for w in $workers; do   # only if the master had to be KILLed
      if kill -0 "$w" 2>/dev/null; then kill -KILL "$w" 2>/dev/null || true; fi
    done
  fi
  stop_pid "$NGINX_WRAPPER_PID"
  stop_pid "$SLUICE_PID"
  if [[ -n $SINK_PID ]]; then
    stop_pid "$SINK_PID"
    [[ -s $WORK/sink.out ]] && log "$(tail -n1 "$WORK/sink.out")"
  fi
  if (( rc != 0 && rc != 2 && rc != 3 )); then
    for f in "$WORK"/sluice.out "$WORK"/sluice.err "$WORK"/nginx-error.log; do
      if [[ -s $f ]]; then
        log "--- last lines of $(basename "$f")"
        tail -n 20 "$f" >&2 || true
      fi
    done
  fi
  if [[ $KEEP_TMP == 1 ]]; then
    log "kept temp dir $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p i
  for (( i = 0; i < 100; i++ )); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

# One POST /v1/inference; prints "STATUS BODY". Bounded to 5 s.
probe() {
  local port=$1
  if command -v curl >/dev/null 2>&1; then
    local out
    out=$(curl -sS -m 5 -o "$WORK/probe.body" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' -H "Authorization: Bearer $API_KEY" \
      --data "$REQUEST_BODY" "http://127.0.0.1:$port/v1/inference" 2>/dev/null) || out=000
    printf '%s %s\n' "$out" "$(head -c 300 "$WORK/probe.body" 2>/dev/null || true)"
  else
    timeout 6 python3 - "$port" "$API_KEY" "$REQUEST_BODY" <<'EOF' || echo "000 "
import sys, urllib.request, urllib.error
port, key, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/inference", data=body.encode(),
    headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}, method="POST")
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status, r.read(300).decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read(300).decode(errors="replace"))
EOF
  fi
}

# Waits (bounded, ~10 s) until a POST answers with any HTTP status.
wait_http() {
  local port=$1 pid=$2 name=$3 i st
  for (( i = 0; i < 100; i++ )); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    st=$(probe "$port" | cut -d' ' -f1)
    [[ $st != 000 ]] && return 0
    sleep 0.1
  done
  die "$name did not answer on port $port within 10 s"
}

check_200() {
  local port=$1 name=$2 out
  out=$(probe "$port")
  [[ ${out%% *} == 200 ]] || die "$name answered '${out}' to the probe request (expected 200)"
  log "$name probe: $out"
}

# CPU accounting for one run, in clock ticks (CLK_TCK):
#   all_busy: user+nice+system of all CPUs from /proc/stat (irq/softirq and
#             steal left out: loopback softirq is our own traffic)
#   server:   utime+stime of the server's processes (all threads)
#   wrk:      user+sys of wrk, from `times` in the subshell that ran it
# "other" = all_busy - server - wrk: other processes on the machine (builds,
# tests) that competed with the run. All shown as % of one CPU.
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
all_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
proc_ticks() {  # pids...; sums utime+stime (fields 14, 15 of /proc/PID/stat)
  local pid total=0 st rest
  for pid in "$@"; do
    st=$(cat /proc/"$pid"/stat 2>/dev/null) || continue
    rest=${st##*) }   # fields from 3 on; comm may hold spaces
    total=$(( total + $(awk '{ print $12 + $13 }' <<<"$rest") ))
  done
  echo "$total"
}
server_pids() {  # the processes of one server: nginx master + workers, or sluice
  if [[ $1 == nginx ]]; then echo "$NGINX_PID"; child_pids "$NGINX_PID"; else echo "$SLUICE_PID"; fi
}
uptime_ticks() { awk -v hz="$CLK_TCK" '{ printf "%d", $1 * hz }' /proc/uptime; }
pct_of_cpu() {  # ticks wall_ticks
  awk -v a="$1" -v w="$2" 'BEGIN { if (w <= 0) print "n/a"; else printf "%.0f%%", 100 * a / w }'
}

# Runs wrk once; prints the WRKSTAT fields (key=value ...) plus
# wrk_ticks=N to stdout; keeps wrk's full output in $WORK/wrk-<tag>.out.
run_wrk() {
  local port=$1 dur=$2 tag=$3 out="$WORK/wrk-$3.out" secs line rc=0
  secs=$(to_seconds "$dur")
  (
    rc=0
    "${CLIENT_PIN[@]}" timeout $(( secs + 30 )) wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$dur" \
      --timeout 5s -s "$LUA_SCRIPT" "http://127.0.0.1:$port/v1/inference" >"$out" 2>&1 || rc=$?
    times >"$out.times"
    exit "$rc"
  ) || rc=$?
  if (( rc != 0 )); then
    cat "$out" >&2
    die "wrk failed with status $rc ($tag)"
  fi
  line=$(grep -m1 '^WRKSTAT ' "$out" || true)
  [[ -n $line ]] || { cat "$out" >&2; die "no WRKSTAT line from wrk ($tag)"; }
  # second line of `times`: children's user and system time, e.g. 0m1.230s 0m2.340s
  local wrk_ticks
  wrk_ticks=$(sed -n 2p "$out.times" | awk -v hz="$CLK_TCK" '{
      t = 0
      for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
      printf "%d", t * hz }')
  echo "${line#WRKSTAT } wrk_ticks=${wrk_ticks:-0}"
  if grep -q '^WRKSTATUS ' "$out"; then
    log "$tag: non-200 answers: $(grep -m1 '^WRKSTATUS ' "$out" | cut -c11-)"
  fi
}

# With IDLE_WAIT > 0: before a run, wait (at most IDLE_WAIT s) until other
# processes use less than 20% of one CPU over a 1-s sample.
wait_idle() {
  (( IDLE_WAIT > 0 )) || return 0
  local deadline=$(( SECONDS + IDLE_WAIT )) next_log=0 b0 b1 u0 u1 p
  while :; do
    b0=$(all_busy_ticks); u0=$(uptime_ticks); sleep 1; b1=$(all_busy_ticks); u1=$(uptime_ticks)
    p=$(awk -v b=$(( b1 - b0 )) -v w=$(( u1 - u0 )) 'BEGIN { printf "%d", (w > 0 ? 100 * b / w : 0) }')
    (( p < 20 )) && return 0
    if (( SECONDS >= deadline )); then
      log "machine still busy (${p}% of a CPU used by others) after ${IDLE_WAIT}s; running anyway"
      return 0
    fi
    if (( SECONDS >= next_log )); then
      log "machine busy (${p}% of a CPU used by others); waiting up to $(( deadline - SECONDS ))s"
      next_log=$(( SECONDS + 15 ))
    fi
  done
}

field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

median() {  # numbers as arguments
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt_ms() { awk -v u="$1" 'BEGIN { if (u == "n/a") print "n/a"; else printf "%.3f ms", u / 1000 }'; }
fmt_rps() { awk -v r="$1" 'BEGIN { if (r == "n/a") print "n/a"; else printf "%.0f", r }'; }

# ---------------------------------------------------------------- nginx
start_nginx() {
  local port
  port=$(free_port)
  mkdir -p "$WORK/nginx-tmp"
  local user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root;"
  cat >"$WORK/nginx.conf" <<EOF
# Written by bench/gateway_vs_nginx.sh: a constant answer on one worker.
$user_line
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000000;   # keep-alive for the whole run, like Sluice
    server {
        listen 127.0.0.1:$port;
        server_name _;
        location = /v1/inference {
            default_type application/json;
            return 200 '$NGINX_BODY';
        }
        location / {
            return 404;
        }
    }
}
EOF
  timeout 10 "$NGINX_BIN" -t -q -p "$WORK/" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >&2 \
    || die "nginx -t rejected $WORK/nginx.conf"
  # taskset execs nginx, and `daemon off` keeps the master in the
  # foreground, so $! is the nginx master's pid.
  "${SERVER_PIN[@]}" "$NGINX_BIN" -p "$WORK/" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" \
    </dev/null >"$WORK/nginx.out" 2>&1 &
  NGINX_PID=$!
  wait_http "$port" "$NGINX_PID" nginx
  local filepid
  filepid=$(cat "$WORK/nginx.pid" 2>/dev/null || true)
  if [[ -n $filepid && $filepid != "$NGINX_PID" ]]; then
    # Not expected (taskset execs nginx); stop both at exit, master first.
    log "warning: nginx pid file says $filepid, \$! was $NGINX_PID"
    NGINX_WRAPPER_PID=$NGINX_PID
    NGINX_PID=$filepid
  fi
  check_200 "$port" nginx
  NGINX_PORT=$port
  log "nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //') pid $NGINX_PID on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- sluice
write_sluice_config() {
  local cfg=$1
  [[ -f $BASE_CONFIG ]] || die "$BASE_CONFIG not found"
  sed -E \
    -e "s/^([[:space:]]*)port:[[:space:]]*[0-9]+/\1port: 0/" \
    -e "s/^([[:space:]]*)io_threads:.*/\1io_threads: $SLUICE_IO_THREADS/" \
    -e "s/^([[:space:]]*)max_batch_size:.*/\1max_batch_size: 64/" \
    -e "s/^([[:space:]]*)max_batch_delay_us:.*/\1max_batch_delay_us: 0/" \
    -e "s/^([[:space:]]*)queue_capacity:.*/\1queue_capacity: 100000/" \
    -e "s/^([[:space:]]*)devices:.*/\1devices: 1/" \
    -e "s/^([[:space:]]*)fixed_latency_us:.*/\1fixed_latency_us: 0/" \
    -e "s/^([[:space:]]*)per_item_latency_us:.*/\1per_item_latency_us: 0/" \
    -e "s/^([[:space:]]*)jitter:.*/\1jitter: 0/" \
    -e "s/^([[:space:]]*)requests_per_minute:.*/\1requests_per_minute: 0/" \
    -e "s/^([[:space:]]*)tokens_per_minute:.*/\1tokens_per_minute: 0/" \
    -e "s/^([[:space:]]*)backend: sqlite/\1backend: $REQUEST_LOG/" \
    -e "s#^([[:space:]]*)path: sluice-requests.db#\1path: $WORK/requests.db#" \
    <(without_embedding_model "$BASE_CONFIG") >"$cfg"
  if [[ -n $TRACE_RATIO ]]; then
    printf 'tracing:\n  otlp_endpoint: http://127.0.0.1:%s/v1/traces\n  sample_ratio: %s\n' \
      "$SINK_PORT" "$TRACE_RATIO" >>"$cfg"
  fi
  local k
  for k in "io_threads: $SLUICE_IO_THREADS" "max_batch_size: 64" "max_batch_delay_us: 0" \
           "queue_capacity: 100000" "devices: 1" "fixed_latency_us: 0" \
           "per_item_latency_us: 0" "jitter: 0" "name: sluice-sim-small"; do
    grep -qE "^[[:space:]]*-?[[:space:]]*$k\$" "$cfg" \
      || die "could not set '$k' in the copy of $BASE_CONFIG (has its layout changed?)"
  done
}

# The OTLP receiver of TRACE_RATIO runs: on the client's CPU, like wrk.
start_sink() {
  local i line=""
  command -v node >/dev/null 2>&1 || die "TRACE_RATIO needs node (scripts/setup installs it)"
  "${CLIENT_PIN[@]}" node "$REPO_ROOT/bench/otlp_sink.mjs" 0 </dev/null >"$WORK/sink.out" 2>&1 &
  SINK_PID=$!
  for (( i = 0; i < 100; i++ )); do
    line=$(grep -m1 -oE 'listening on [0-9]+' "$WORK/sink.out" 2>/dev/null || true)
    [[ -n $line ]] && break
    sleep 0.1
  done
  [[ -n $line ]] || die "the OTLP sink did not start"
  SINK_PORT=${line##* }
  log "otlp sink pid $SINK_PID on 127.0.0.1:$SINK_PORT (sample ratio $TRACE_RATIO)"
}

start_sluice() {
  local cfg="$WORK/sluice.yaml" i line=""
  [[ -n $TRACE_RATIO ]] && start_sink
  write_sluice_config "$cfg"
  # taskset and stdbuf both exec, so $! is sluice's own pid; stdbuf makes a
  # C-stdio stdout line-buffered so the "listening" line is not held back.
  local pre=()
  command -v stdbuf >/dev/null 2>&1 && pre=(stdbuf -oL -eL)
  "${SERVER_PIN[@]}" "${pre[@]}" "$SLUICE_BIN" serve --config "$cfg" --port 0 \
    </dev/null >"$WORK/sluice.out" 2>"$WORK/sluice.err" &
  SLUICE_PID=$!
  for (( i = 0; i < 200; i++ )); do     # ~20 s
    line=$(grep -h -m1 -oE 'sluice: listening on http://[^ ]+:[0-9]+' \
             "$WORK/sluice.out" "$WORK/sluice.err" 2>/dev/null | head -n1 || true)
    [[ -n $line ]] && break
    kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice exited during start-up"
    sleep 0.1
  done
  [[ -n $line ]] || die "sluice did not print 'sluice: listening on http://...' within 20 s"
  SLUICE_PORT=${line##*:}
  wait_http "$SLUICE_PORT" "$SLUICE_PID" sluice
  check_200 "$SLUICE_PORT" sluice
  log "sluice pid $SLUICE_PID on 127.0.0.1:$SLUICE_PORT (io_threads $SLUICE_IO_THREADS)"
}

# ---------------------------------------------------------------- run
(( run_nginx )) && start_nginx
(( run_sluice )) && start_sluice

servers=()
(( run_nginx )) && servers+=(nginx)
(( run_sluice )) && servers+=(sluice)
port_of() { if [[ $1 == nginx ]]; then echo "$NGINX_PORT"; else echo "$SLUICE_PORT"; fi; }

declare -A RPS P50 P99 NON2XX SOCKERR CLEAN_RPS  # CLEAN_RPS: runs with others < 10% of a CPU
round_rows=()
errors_seen=0

if (( WARMUP_S > 0 )); then
  for s in "${servers[@]}"; do
    log "warm-up $s for $WARMUP"
    r=$(run_wrk "$(port_of "$s")" "$WARMUP" "warmup-$s")
    n=$(field "$r" non200)
    if (( n > 0 )); then
      errors_seen=1
      round_rows+=("| warm-up | $s | $(fmt_rps "$(field "$r" rps)") | | | $n | | | | |")
    fi
  done
fi

max_other=0      # largest "other processes" CPU % seen in a measured run
max_wrk_nginx=0  # largest wrk CPU % in an nginx run
for (( round = 1; round <= ROUNDS; round++ )); do
  for s in "${servers[@]}"; do
    wait_idle
    log "round $round/$ROUNDS: $s for $DURATION, $CONNECTIONS connections, $WRK_THREADS wrk thread(s)"
    mapfile -t spids < <(server_pids "$s")
    a0=$(all_busy_ticks); s0=$(proc_ticks "${spids[@]}"); u0=$(uptime_ticks)
    r=$(run_wrk "$(port_of "$s")" "$DURATION" "$s-$round")
    a1=$(all_busy_ticks); s1=$(proc_ticks "${spids[@]}"); u1=$(uptime_ticks)
    rps=$(field "$r" rps); p50=$(field "$r" p50_us); p99=$(field "$r" p99_us)
    non=$(field "$r" non200)
    sock=$(( $(field "$r" err_connect) + $(field "$r" err_read) + $(field "$r" err_write) + $(field "$r" err_timeout) ))
    RPS[$s]="${RPS[$s]:-} $rps"; P50[$s]="${P50[$s]:-} $p50"; P99[$s]="${P99[$s]:-} $p99"
    NON2XX[$s]=$(( ${NON2XX[$s]:-0} + non )); SOCKERR[$s]=$(( ${SOCKERR[$s]:-0} + sock ))
    if (( non > 0 || sock > 0 )); then errors_seen=1; fi
    wall=$(( u1 - u0 )); srv=$(( s1 - s0 )); wrkt=$(field "$r" wrk_ticks)
    other=$(( a1 - a0 - srv - wrkt )); (( other >= 0 )) || other=0
    other_pct=$(pct_of_cpu "$other" "$wall"); other_pct=${other_pct%\%}; [[ $other_pct =~ ^[0-9]+$ ]] || other_pct=0
    wrk_pct=$(pct_of_cpu "$wrkt" "$wall"); wrk_pct=${wrk_pct%\%}; [[ $wrk_pct =~ ^[0-9]+$ ]] || wrk_pct=0
    if (( other_pct < 10 )); then CLEAN_RPS[$s]="${CLEAN_RPS[$s]:-} $rps"; fi
    (( other_pct > max_other )) && max_other=$other_pct
    [[ $s == nginx ]] && (( wrk_pct > max_wrk_nginx )) && max_wrk_nginx=$wrk_pct
    row="| $round | $s | $(fmt_rps "$rps") | $(fmt_ms "$p50") | $(fmt_ms "$p99") | $non | $sock"
    row+=" | $(pct_of_cpu "$srv" "$wall") | $(pct_of_cpu "$wrkt" "$wall") | $(pct_of_cpu "$other" "$wall") |"
    round_rows+=("$row")
    log "  $s: $(fmt_rps "$rps") req/s, p50 $(fmt_ms "$p50"), p99 $(fmt_ms "$p99"), non-2xx $non, socket errors $sock;" \
        "CPU: server $(pct_of_cpu "$srv" "$wall"), wrk $(pct_of_cpu "$wrkt" "$wall"), others $(pct_of_cpu "$other" "$wall")"
  done
done

# ---------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] || cpu_model=$(lscpu 2>/dev/null | awk -F': +' '/Model name/ { print $2; exit }' || true)
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "none")
if ! git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null; then commit="$commit (working tree differs)"; fi
pin_text="server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU (taskset)"
trace_text=off
[[ -n $TRACE_RATIO ]] && trace_text="sampled at $TRACE_RATIO, spans to an OTLP sink (bench/otlp_sink.mjs, on the client CPU)"
(( PIN )) || pin_text="not pinned (fewer than 2 CPUs)"

REPORT="$WORK/report.md"
{
  echo "## Sluice vs nginx, keep-alive, same machine ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  echo "- machine: $NCPU CPUs ($(nproc --all) online), ${cpu_model:-unknown CPU}, kernel $(uname -r), $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")"
  echo "- load: $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'), $WRK_THREADS thread(s), $CONNECTIONS keep-alive connections, $DURATION per run, $ROUNDS round(s) alternating ${servers[*]}, warm-up $WARMUP; POST /v1/inference via bench/wrk_inference.lua, WRK_COUNT=$WRK_COUNT"
  echo "- pinning: $pin_text"
  (( run_nginx )) && echo "- nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //'), worker_processes 1, access_log off, \`return 200\` of a constant $(( ${#NGINX_BODY} ))-byte JSON body"
  (( run_sluice )) && echo "- sluice: \`${SLUICE_BIN#"$REPO_ROOT"/} serve\`, commit $commit, io_threads $SLUICE_IO_THREADS; model sluice-sim-small on 1 sim device with 0 latency, max_batch_size 64, max_batch_delay_us 0, queue_capacity 100000; tracing $trace_text"
  echo
  echo "| server | req/s (median of $ROUNDS) | p50 | p99 | non-2xx | socket errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  for s in "${servers[@]}"; do
    # shellcheck disable=SC2086  # word splitting of the per-round lists is intended
    echo "| $s | $(fmt_rps "$(median ${RPS[$s]})") | $(fmt_ms "$(median ${P50[$s]})") | $(fmt_ms "$(median ${P99[$s]})") | ${NON2XX[$s]} | ${SOCKERR[$s]} |"
  done
  echo
  echo "p50/p99: median over the rounds of each run's wrk percentile. Per run:"
  echo
  echo "| round | server | req/s | p50 | p99 | non-2xx | socket errors | server CPU | wrk CPU | other processes' CPU |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${round_rows[@]}"
  echo
  echo "CPU columns: % of one CPU over the run (process user+system time; \"other\" is the rest of the machine's user+system time)."
  echo
  if (( max_other >= 10 )); then
    echo "**NOISY: other processes used up to ${max_other}% of a CPU during a run; the figures are not clean (rerun on a quiet machine, or set IDLE_WAIT).**"
    echo
  fi
  if (( run_nginx && max_wrk_nginx >= 90 )); then
    echo "Note (client-bound): wrk used up to ${max_wrk_nginx}% of its CPU in an nginx run, so nginx's figure is partly what one wrk core can drive: a lower bound for nginx, and the ratio may flatter Sluice. This is inherent to wrk and the server sharing 2 cores."
    echo
  fi
  if (( errors_seen )); then
    echo "**ERRORS: some runs had non-2xx answers or socket errors; their req/s do not count as a result.**"
    echo
    for f in "$WORK"/wrk-*.out; do
      if grep -q '^WRKSTATUS ' "$f"; then
        t=${f##*/wrk-}
        echo "- ${t%.out}: $(grep -m1 '^WRKSTATUS ' "$f" | cut -c11- | cut -c1-300)"
      fi
    done
    echo
  fi
  if (( run_nginx && run_sluice )); then
    # shellcheck disable=SC2086
    ratio=$(awk -v a="$(median ${RPS[sluice]})" -v b="$(median ${RPS[nginx]})" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    verdict=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r + 0 >= t + 0 ? "meets" : "BELOW") }')
    if (( max_other >= 10 )) && [[ -n ${CLEAN_RPS[nginx]:-} && -n ${CLEAN_RPS[sluice]:-} ]]; then
      # shellcheck disable=SC2086
      cn=$(median ${CLEAN_RPS[nginx]}); cs=$(median ${CLEAN_RPS[sluice]})
      echo "clean runs only (others < 10% of a CPU): nginx $(fmt_rps "$cn") req/s ($(wc -w <<<"${CLEAN_RPS[nginx]}") run(s)), sluice $(fmt_rps "$cs") req/s ($(wc -w <<<"${CLEAN_RPS[sluice]}") run(s)), ratio $(awk -v a="$cs" -v b="$cn" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
      echo
    fi
    if (( errors_seen )); then
      echo "verdict: INVALID (errors above); the ratio of medians says sluice $verdict the target"
    elif (( max_other >= 10 )); then
      echo "verdict: INCONCLUSIVE (noisy machine); the ratio of medians says sluice $verdict the target"
    else
      echo "verdict: sluice $verdict the target"
    fi
    echo "ratio sluice/nginx = $ratio (target >= $TARGET)"
  else
    ratio=""
    echo "ratio sluice/nginx = n/a (ONLY=$ONLY) (target >= $TARGET)"
  fi
} >"$REPORT"

cat "$REPORT"
if (( SAVE )); then
  mkdir -p "$REPO_ROOT/bench/results"
  dest="$REPO_ROOT/bench/results/gateway_vs_nginx-$(date +%Y-%m-%d-%H%M%S).md"
  cp "$REPORT" "$dest"
  log "saved $dest"
fi

if (( errors_seen )); then
  log "non-2xx answers or socket errors were seen: exit 2"
  exit 2
fi
if [[ $STRICT == 1 && -n $ratio ]] && (( max_other >= 10 )); then
  log "noisy machine, result inconclusive: exit 4 (strict)"
  exit 4
fi
if [[ $STRICT == 1 && -n $ratio ]] && awk -v r="$ratio" -v t="$TARGET" 'BEGIN { exit !(r + 0 < t + 0) }'; then
  log "ratio $ratio below target $TARGET: exit 3 (strict)"
  exit 3
fi
exit 0
