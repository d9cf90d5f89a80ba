#!/usr/bin/env bash
# backends.sh: Sluice -> model-server over HTTP, batching against no batching.
#
# Requirement: "bench/ script: Sluice -> model-server over HTTP at a realistic
# batch profile (32 items ~ 50 ms, several endpoints); report throughput,
# p50/p95/p99 and the batch-size distribution, next to the same load with
# max_batch_size 1 (no batching) in the same run."
#
# What it does
#   1. Starts ENDPOINTS (3) `sluice model-server --port 0` processes, each with
#      DEVICES_PER_ENDPOINT (1) simulated device (one batch at a time) at
#      34 ms + 0.5 ms per item (a batch of 32 in 50 ms, one of 1 in 34.5 ms),
#      jitter JITTER (0.05, as config/sluice.yaml's sim). Each one's port is
#      read from its "listening on http://127.0.0.1:PORT" line. They stay up
#      for the whole run: every step talks to the same three servers.
#   2. For each step, a fresh `sluice serve --port 0` on a config generated
#      from config/sluice-http.yaml (its service token, keys and tier budgets):
#      backend kind http, the ENDPOINTS URLs (/v1/batch), connections_per_
#      endpoint CONNECTIONS_PER_ENDPOINT (default = DEVICES_PER_ENDPOINT: one
#      batch in flight per device), retry and circuit_breaker left at their
#      defaults, request_log backend memory (no disk I/O is measured),
#      admission off (ADMISSION; on, the no-batching steps would measure
#      admission's 503s instead of the backend), every requests_per_minute /
#      tokens_per_minute 0. The steps, in this order:
#        batching    @ RATE      max_batch_size BATCH (32), max_batch_delay
#                                BATCH_DELAY_US (10000)
#        no batching @ RATE      max_batch_size 1 (the same load)
#        batching    @ LOW_RATE  (LOW_RATE 0 skips both low-rate steps)
#        no batching @ LOW_RATE  a rate no batching can sustain
#      Theoretical capacity: batching ENDPOINTS x DEVICES x 32 / 0.050 s
#      (3 x 32 / 0.05 = 1,920 req/s); no batching ENDPOINTS x DEVICES / 0.0345 s
#      (~87 req/s). RATE (1200) is what batching sustains comfortably and no
#      batching cannot; LOW_RATE (70) is what both can.
#   3. Each step: one probe request (200 expected), then `sluice bench` (open
#      loop, constant arrivals, the paid demo key only: --mix paid=100) at the
#      step's rate for DURATION (15s) after WARMUP (2s, not counted), --json.
#      `sluice bench` scrapes /metrics with the service token svc-demo-token
#      before and after the measured time: batch-size histogram deltas
#      (sluice_batch_size) and accelerator utilisation. CPU of sluice, the
#      model-servers, sluice bench and everything else is read from /proc.
#      Then that sluice is stopped and the next step starts.
#   4. Prints a markdown report on stdout: per step the offered and achieved
#      req/s, success %, status counts, p50/p95/p99/max latency (200s, from
#      the scheduled send time); the batch-size distribution, mean batch size
#      and utilisation; CPU; the generator's health; and the ratios
#      batching / no batching of the achieved throughput (and of p50/p99 at
#      LOW_RATE). Nothing is pinned.
#
# Usage
#   bench/backends.sh [--save] [--rate 1200] [--low-rate 70] [--duration 15s] [--bin PATH]
#
# Environment (flags win): SLUICE_BIN (default build/src/app/sluice), RATE
# (1200), LOW_RATE (70; 0 = no low-rate steps), DURATION (15s), WARMUP (2s),
# ENDPOINTS (3), DEVICES_PER_ENDPOINT (1), CONNECTIONS_PER_ENDPOINT
# (= DEVICES_PER_ENDPOINT), BATCH (32), BATCH_DELAY_US (10000), FIXED_US
# (34000), PER_ITEM_US (500), JITTER (0.05), ADMISSION (off | on), CONNECTIONS
# (2048: sluice bench's keep-alive connections; the overloaded no-batching
# step has about RATE x 0.84 s in flight, the paid tier's 800 ms dispatch
# deadline plus one batch), BENCH_THREADS (1), SLUICE_IO_THREADS (2),
# MS_IO_THREADS (1: each model-server's), BASE_CONFIG
# (config/sluice-http.yaml), KEEP_TMP (0; 1 keeps the temp dir with configs,
# logs and raw JSON). Needs curl and python3. Defaults take about 1.5 min.
#
# Exit status: 0 done; 1 setup failure (a server did not start, a probe
# failed, sluice bench could not run); 2 some step saw transport errors,
# timeouts or statuses other than 200/429/503/504 (report still printed);
# 130/143 interrupted. --save also writes the report to
# bench/results/backends-<date>.md.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

SLUICE_BIN=${SLUICE_BIN:-}
RATE=${RATE:-1200}
LOW_RATE=${LOW_RATE:-70}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-2s}
ENDPOINTS=${ENDPOINTS:-3}
DEVICES_PER_ENDPOINT=${DEVICES_PER_ENDPOINT:-1}
CONNECTIONS_PER_ENDPOINT=${CONNECTIONS_PER_ENDPOINT:-$DEVICES_PER_ENDPOINT}
BATCH=${BATCH:-32}
BATCH_DELAY_US=${BATCH_DELAY_US:-10000}
FIXED_US=${FIXED_US:-34000}
PER_ITEM_US=${PER_ITEM_US:-500}
JITTER=${JITTER:-0.05}
ADMISSION=${ADMISSION:-off}
CONNECTIONS=${CONNECTIONS:-2048}
BENCH_THREADS=${BENCH_THREADS:-1}
SLUICE_IO_THREADS=${SLUICE_IO_THREADS:-2}
MS_IO_THREADS=${MS_IO_THREADS:-1}
BASE_CONFIG=${BASE_CONFIG:-$REPO_ROOT/config/sluice-http.yaml}
KEEP_TMP=${KEEP_TMP:-0}
SAVE=0
MODEL=sluice-sim-small
PAID_KEY=sk-paid-demo-0001
SERVICE_TOKEN=svc-demo-token

usage() { sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --save) SAVE=1 ;;
    --rate) RATE=${2:?--rate needs a value}; shift ;;
    --low-rate) LOW_RATE=${2:?--low-rate needs a value}; shift ;;
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --bin) SLUICE_BIN=${2:?--bin needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done

log() { printf '[backends] %s\n' "$*" >&2; }
die() { printf '[backends] error: %s\n' "$*" >&2; exit 1; }

# Whole seconds in "20", "20s", "2m".
to_seconds() {
  case "$1" in
    *[!0-9sm]*|''|s|m) die "bad duration '$1' (use e.g. 15s, 2m)" ;;
    *s) echo $(( ${1%s} )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *) echo $(( $1 )) ;;
  esac
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
(( DURATION_S >= 1 )) || die "DURATION must be at least 1s"
for v in ENDPOINTS DEVICES_PER_ENDPOINT CONNECTIONS_PER_ENDPOINT BATCH CONNECTIONS BENCH_THREADS \
         SLUICE_IO_THREADS MS_IO_THREADS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for v in BATCH_DELAY_US FIXED_US PER_ITEM_US; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for v in RATE LOW_RATE JITTER; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number (got '${!v}')"
done
python3 -c "import sys; sys.exit(0 if float('$RATE') > 0 else 1)" 2>/dev/null || die "RATE must be > 0"
case "$ADMISSION" in
  on) ADMISSION_BOOL=true ;;
  off) ADMISSION_BOOL=false ;;
  *) die "ADMISSION must be on or off (got '$ADMISSION')" ;;
esac
command -v python3 >/dev/null 2>&1 || die "python3 is needed"
command -v curl >/dev/null 2>&1 || die "curl is needed"
[[ -f $BASE_CONFIG ]] || die "$BASE_CONFIG not found"

# ---------------------------------------------------------------- sluice binary
if [[ -z $SLUICE_BIN ]]; then
  SLUICE_BIN=build/src/app/sluice
  if [[ ! -x $SLUICE_BIN ]]; then
    log "$SLUICE_BIN missing: building it (Release)"
    timeout 3600 cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
    timeout 3600 ninja -C build sluice >&2
  fi
fi
[[ -x $SLUICE_BIN ]] || die "SLUICE_BIN '$SLUICE_BIN' is not an executable file"
SLUICE_BIN=$(cd "$(dirname "$SLUICE_BIN")" && pwd)/$(basename "$SLUICE_BIN")
timeout 10 "$SLUICE_BIN" bench --help >/dev/null 2>&1 \
  || die "'$SLUICE_BIN bench --help' failed: this binary has no load generator"
timeout 10 "$SLUICE_BIN" model-server --help >/dev/null 2>&1 \
  || die "'$SLUICE_BIN model-server --help' failed: this binary has no model-server"

# ---------------------------------------------------------------- temp dir and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-backends.XXXXXX")
MS_PIDS=()
SLUICE_PID=""
BENCH_PID=""

# Stops one process this script started: TERM, up to 5 s, then KILL.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked through the traps below
cleanup() {
  local rc=$? p f
  trap - EXIT INT TERM
  stop_pid "$BENCH_PID"
  stop_pid "$SLUICE_PID"
  for p in "${MS_PIDS[@]}"; do stop_pid "$p"; done
  if (( rc != 0 && rc != 2 )); then
    for f in "$WORK"/*/sluice.err "$WORK"/*/bench.err "$WORK"/ms-*.err; do
      if [[ -s $f ]]; then
        log "--- last lines of ${f#"$WORK"/}"
        tail -n 20 "$f" >&2 || true
      fi
    done
  fi
  if [[ $KEEP_TMP == 1 ]]; then log "kept temp dir $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PRE=()
command -v stdbuf >/dev/null 2>&1 && PRE=(stdbuf -oL -eL)

# wait_listening FILE PID PATTERN WHAT: the port from FILE's "PATTERN...:PORT"
# line, waiting at most ~20 s; dies if PID exits first.
wait_listening() {
  local file=$1 pid=$2 pattern=$3 what=$4 i line=""
  for (( i = 0; i < 200; i++ )); do
    line=$(grep -h -m1 -oE "${pattern}[^ ]+:[0-9]+" "$file" 2>/dev/null | head -n1 || true)
    [[ -n $line ]] && break
    kill -0 "$pid" 2>/dev/null || die "$what exited during start-up"
    sleep 0.1
  done
  [[ -n $line ]] || die "$what did not print '${pattern}...' within 20 s"
  echo "${line##*:}"
}

# ---------------------------------------------------------------- model-servers
ENDPOINT_URLS=()
for (( e = 0; e < ENDPOINTS; e++ )); do
  # stdbuf execs, so $! is the model-server's own pid.
  "${PRE[@]}" "$SLUICE_BIN" model-server --port 0 --model "$MODEL" --devices "$DEVICES_PER_ENDPOINT" \
    --fixed-latency-us "$FIXED_US" --per-item-latency-us "$PER_ITEM_US" --jitter "$JITTER" \
    --io-threads "$MS_IO_THREADS" --seed $(( e + 1 )) \
    </dev/null >"$WORK/ms-$e.out" 2>"$WORK/ms-$e.err" &
  MS_PIDS+=("$!")
done
for (( e = 0; e < ENDPOINTS; e++ )); do
  port=$(wait_listening "$WORK/ms-$e.out" "${MS_PIDS[$e]}" 'sluice-model-server: listening on http://' \
           "model-server $e")
  st=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" 2>/dev/null) || st=000
  [[ $st == 200 ]] || die "model-server $e (port $port) answered GET /health with $st"
  ENDPOINT_URLS+=("http://127.0.0.1:$port/v1/batch")
done
log "model-servers: pids ${MS_PIDS[*]}; ${ENDPOINT_URLS[*]}"

# ---------------------------------------------------------------- config
TOKEN_SHA=$(awk '$1 == "service_token_sha256:" { print $2; exit }' "$BASE_CONFIG")
[[ $TOKEN_SHA =~ ^[0-9a-f]{64}$ ]] || die "no server.service_token_sha256 in $BASE_CONFIG"
# A top-level section of BASE_CONFIG (its header line through the line before
# the next top-level key).
section() { awk -v s="^$1:" '$0 ~ s { on = 1; print; next } on && /^[^[:space:]#]/ { on = 0 } on' "$BASE_CONFIG"; }
TIERS_BLOCK=$(section tiers | sed -E \
  -e "s/^([[:space:]]*)requests_per_minute:[[:space:]]*[0-9]+.*/\1requests_per_minute: 0/" \
  -e "s/^([[:space:]]*)tokens_per_minute:[[:space:]]*[0-9]+.*/\1tokens_per_minute: 0/")
KEYS_BLOCK=$(section keys)
grep -q 'name: paid' <<<"$TIERS_BLOCK" || die "no paid tier in the tiers of $BASE_CONFIG"
grep -q 'tier: paid' <<<"$KEYS_BLOCK" || die "no paid key in the keys of $BASE_CONFIG"
if grep -qE '^[[:space:]]*(requests|tokens)_per_minute:[[:space:]]*[1-9]' <<<"$TIERS_BLOCK"; then
  die "could not set the rate limits to 0 in the tiers of $BASE_CONFIG"
fi
# The paid tier's dispatch deadline: min(latency_budget_ms, max_queue_age_ms)
# (a request still queued then is answered 504); for the report.
PAID_DEADLINE_MS=$(awk '/-[[:space:]]*name:/ { t = $NF } t == "paid" && $1 == "latency_budget_ms:" { b = $2 }
  t == "paid" && $1 == "max_queue_age_ms:" { q = $2 }
  END { if (b == "" && q == "") print ""; else if (b == "" || (q != "" && q + 0 < b + 0)) print q; else print b }' <<<"$TIERS_BLOCK")

# make_config OUT MAX_BATCH_SIZE
make_config() {
  local out=$1 mbs=$2 u
  {
    cat <<EOF
# Generated by bench/backends.sh from $(basename "$BASE_CONFIG").
server:
  listen_address: 127.0.0.1
  port: 0
  io_threads: $SLUICE_IO_THREADS
  max_connections: 20000
  body_limit_bytes: 1048576
  header_limit_bytes: 16384
  read_timeout_ms: 10000
  idle_timeout_ms: 60000
  drain_timeout_ms: 2000
  service_token_sha256: $TOKEN_SHA
  recent_requests: 100000

queue:
  ordering: edf

admission:
  enabled: $ADMISSION_BOOL
  target_utilization: 0.75

request_log:
  backend: memory

$TIERS_BLOCK

models:
  - name: $MODEL
    version: $MODEL-bench
    max_batch_size: $mbs
    max_batch_delay_us: $BATCH_DELAY_US
    queue_capacity: 10000
    accelerator_timeout_ms: 3000
    max_tokens_limit: 4096
    default_max_tokens: 16
    backend:
      kind: http
      endpoints:
EOF
    for u in "${ENDPOINT_URLS[@]}"; do echo "        - $u"; done
    cat <<EOF
      connections_per_endpoint: $CONNECTIONS_PER_ENDPOINT
      connect_timeout_ms: 1000
      request_timeout_ms: 3000

$KEYS_BLOCK
EOF
  } >"$out"
}

# ---------------------------------------------------------------- CPU accounting
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
pid_ticks() {  # utime + stime of one process (all threads); 0 if gone
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  awk '{ print $12 + $13 }' <<<"${st##*) }"
}
ms_ticks() { local p t=0; for p in "${MS_PIDS[@]}"; do t=$(( t + $(pid_ticks "$p") )); done; echo "$t"; }
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
uptime_ticks() { awk -v hz="$CLK_TCK" '{ printf "%d", $1 * hz }' /proc/uptime; }
# children_ticks FILE: the children's user + system time in FILE, the output
# of `times` (its second line), in ticks. `times` must run in this shell, not
# in a $(...) subshell, whose children times start at zero.
children_ticks() {
  sed -n 2p "$1" | awk -v hz="$CLK_TCK" '{
      t = 0
      for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
      printf "%d\n", t * hz + 0.5 }'
}

# ---------------------------------------------------------------- one step
# run_step TAG VARIANT MAX_BATCH_SIZE RATE: writes $WORK/TAG/{sluice.yaml,
# bench.json, step.env}. Returns 0, or dies.
run_step() {
  local tag=$1 variant=$2 mbs=$3 rate=$4
  local label="$variant @ $rate req/s" dir="$WORK/$tag"
  mkdir -p "$dir"
  make_config "$dir/sluice.yaml" "$mbs"
  "${PRE[@]}" "$SLUICE_BIN" serve --config "$dir/sluice.yaml" --port 0 \
    </dev/null >"$dir/sluice.out" 2>"$dir/sluice.err" &
  SLUICE_PID=$!
  local port url probe
  port=$(wait_listening "$dir/sluice.out" "$SLUICE_PID" 'sluice: listening on http://' "sluice ($label)")
  url="http://127.0.0.1:$port"
  probe=$(curl -sS -m 5 -o "$dir/probe.body" -w '%{http_code}' \
    -H "Authorization: Bearer $PAID_KEY" -H 'Content-Type: application/json' \
    --data "{\"model\":\"$MODEL\",\"input\":\"probe\"}" "$url/v1/inference" 2>/dev/null) || probe=000
  [[ $probe == 200 ]] || die "probe request ($label) answered $probe: $(head -c 300 "$dir/probe.body" 2>/dev/null)"
  log "$label: sluice pid $SLUICE_PID on $url, max_batch_size $mbs; offering $rate req/s for ${DURATION_S}s (+${WARMUP_S}s warm-up)"

  local s0 m0 b0 u0 c0 s1 m1 b1 u1 c1 rc=0
  s0=$(pid_ticks "$SLUICE_PID"); m0=$(ms_ticks); b0=$(busy_ticks); u0=$(uptime_ticks); times >"$dir/times0"
  timeout -k 5 $(( WARMUP_S + DURATION_S + 60 )) "$SLUICE_BIN" bench --url "$url" --rate "$rate" \
    --duration "${DURATION_S}s" --warmup "${WARMUP_S}s" --connections "$CONNECTIONS" \
    --threads "$BENCH_THREADS" --mix paid=100 --model "$MODEL" --service-token "$SERVICE_TOKEN" \
    --json >"$dir/bench.json" 2>"$dir/bench.err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  # Between c0 and c1 the only child reaped is that `timeout` (which has
  # reaped sluice bench), so the growth is the generator's CPU.
  times >"$dir/times1"
  s1=$(pid_ticks "$SLUICE_PID"); m1=$(ms_ticks); b1=$(busy_ticks); u1=$(uptime_ticks)
  (( rc == 0 )) || die "sluice bench ($label) failed (exit $rc): $(tail -n 3 "$dir/bench.err")"
  kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice ($label) died during the run"
  local p
  for p in "${MS_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "model-server pid $p died during $label"; done
  c0=$(children_ticks "$dir/times0"); c1=$(children_ticks "$dir/times1")
  local gen=$(( c1 - c0 ))
  {
    echo "label=$variant"
    echo "max_batch_size=$mbs"
    echo "rate=$rate"
    echo "wall_ticks=$(( u1 - u0 ))"
    echo "sluice_ticks=$(( s1 - s0 ))"
    echo "ms_ticks=$(( m1 - m0 ))"
    echo "bench_ticks=$gen"
    echo "busy_ticks=$(( b1 - b0 ))"
  } >"$dir/step.env"
  stop_pid "$SLUICE_PID"
  SLUICE_PID=""
}

STEPS=("batch-high|batching|$BATCH|$RATE" "nobatch-high|no batching|1|$RATE")
if python3 -c "import sys; sys.exit(0 if float('$LOW_RATE') > 0 else 1)"; then
  STEPS+=("batch-low|batching|$BATCH|$LOW_RATE" "nobatch-low|no batching|1|$LOW_RATE")
fi
STEP_TAGS=()
for s in "${STEPS[@]}"; do
  IFS='|' read -r tag label mbs rate <<<"$s"
  run_step "$tag" "$label" "$mbs" "$rate"
  STEP_TAGS+=("$tag")
done

# ---------------------------------------------------------------- report
COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] \
  && COMMIT="$COMMIT (working tree differs)"
MACHINE="$(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
export WORK MACHINE COMMIT SLUICE_BIN RATE LOW_RATE DURATION_S WARMUP_S ENDPOINTS DEVICES_PER_ENDPOINT \
  CONNECTIONS_PER_ENDPOINT BATCH BATCH_DELAY_US FIXED_US PER_ITEM_US JITTER ADMISSION CONNECTIONS \
  BENCH_THREADS SLUICE_IO_THREADS MS_IO_THREADS CLK_TCK BASE_CONFIG PAID_DEADLINE_MS
STEP_TAGS_STR="${STEP_TAGS[*]}"
export STEP_TAGS_STR
REPORT="$WORK/report.md"
report_rc=0
python3 - >"$REPORT" <<'EOF' || report_rc=$?
import datetime, json, os, sys

e = os.environ
work = e["WORK"]

def load_env(path):
    out = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition("=")
        out[k] = v
    return out

steps = []
for tag in e["STEP_TAGS_STR"].split():
    env = load_env(os.path.join(work, tag, "step.env"))
    b = json.load(open(os.path.join(work, tag, "bench.json")))
    steps.append((tag, env, b))

def ms(v):
    return "–" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"

def pct(n, d):
    return "–" if d == 0 else f"{100 * n / d:.1f} %"

def cpu(env, key):
    w = int(env["wall_ticks"])
    return None if w <= 0 else 100 * int(env[key]) / w

f_us, i_us = int(e["FIXED_US"]), int(e["PER_ITEM_US"])
batch = int(e["BATCH"])
devices = int(e["ENDPOINTS"]) * int(e["DEVICES_PER_ENDPOINT"])
t_full = (f_us + batch * i_us) / 1e6
t_one = (f_us + i_us) / 1e6
cap_batch = devices * batch / t_full
cap_one = devices / t_one

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(f"## Backends: Sluice -> {e['ENDPOINTS']} model-servers over HTTP, batching vs no batching ({now})\n")
print(f"- machine: {e['MACHINE']}")
binary = e["SLUICE_BIN"]
if binary.startswith(os.getcwd() + "/"):
    binary = os.path.relpath(binary)
print(f"- sluice: `{binary}`, commit {e['COMMIT']}, `sluice serve` io_threads {e['SLUICE_IO_THREADS']}, "
      f"a fresh one per step on a config generated from `{os.path.relpath(e['BASE_CONFIG'])}`: "
      f"backend kind http, {e['ENDPOINTS']} endpoints (`/v1/batch`), connections_per_endpoint "
      f"{e['CONNECTIONS_PER_ENDPOINT']}, retry and circuit_breaker defaults, request_log memory, "
      f"admission {e['ADMISSION']}, rate limits off, the paid demo key only")
print(f"- model-servers: {e['ENDPOINTS']} x `sluice model-server --port 0`, {e['DEVICES_PER_ENDPOINT']} "
      f"device(s) each (one batch at a time per device), {f_us / 1000:g} ms + {i_us / 1000:g} ms/item, "
      f"jitter {e['JITTER']}, io_threads {e['MS_IO_THREADS']}; the same processes for every step")
print(f"- batching: max_batch_size {batch}, max_batch_delay {int(e['BATCH_DELAY_US']) / 1000:g} ms; "
      f"theoretical capacity {devices} devices x {batch} / {t_full:.4g} s = **{cap_batch:,.0f} req/s**")
print(f"- no batching: max_batch_size 1; theoretical capacity {devices} devices x 1 / {t_one:.4g} s = "
      f"**{cap_one:,.0f} req/s**")
print(f"- load: `sluice bench`, open loop, constant arrivals, paid tier only, {e['CONNECTIONS']} "
      f"connections, {e['BENCH_THREADS']} thread(s), {e['DURATION_S']} s per step after a "
      f"{e['WARMUP_S']} s warm-up (not counted); latencies are of the 200s, from each request's "
      f"scheduled send time; nothing is pinned\n")

print("| step | max_batch_size | offered req/s | achieved req/s | success | 200 | 503 | 504 | 429 | other | p50 | p95 | p99 | max |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for tag, env, b in steps:
    a = b["overall"]["all"]
    lat = a["latency_ms"]
    print(f"| {env['label']} @ {float(env['rate']):g} | {env['max_batch_size']} | {a['offered_rps']:.0f} | "
          f"{a['achieved_rps']:.0f} | {pct(a['ok'], a['scheduled'])} | {a['ok']} | {a['status_503']} | "
          f"{a['status_504']} | {a['status_429']} | {a['other']} | {ms(lat['p50'])} | {ms(lat['p95'])} | "
          f"{ms(lat['p99'])} | {ms(lat['max'])} |")
print("\nsuccess = 200 / requests sent in the measured time; achieved = 200s / s; other = transport "
      "errors, timeouts and statuses other than 200/429/503/504.")
dl = e.get("PAID_DEADLINE_MS") or "?"
print(f"504 = still queued at the request's dispatch deadline (paid tier: min(latency_budget_ms, "
      f"max_queue_age_ms) = {dl} ms). In an overloaded step the queue is earliest-deadline-first, so "
      f"the requests that are served are those dispatched just before that deadline: their latencies "
      f"sit near {dl} ms + one batch, whatever the percentile.\n")

# Batch sizes: sluice_batch_size deltas over the measured time, from sluice bench's scrapes.
def model_of(b):
    g = b.get("gateway") or []
    return g[0] if g else None

edges = []
for _, _, b in steps:
    m = model_of(b)
    if m:
        for bk in m["batch_size_buckets"]:
            if bk["le"] not in edges:
                edges.append(bk["le"])
edges = sorted((x for x in edges if x is not None)) + ([None] if None in edges else [])

def bucket_name(prev, le):
    if le is None:
        return f">{prev:g}"
    lo = int(prev) + 1 if prev is not None else 1
    hi = int(le)
    return f"{hi}" if lo >= hi else f"{lo}-{hi}"

names = []
prev = None
for le in edges:
    names.append(bucket_name(prev if prev is not None else 0, le))
    prev = le if le is not None else prev
print("Batch sizes over the measured time (`/metrics` histogram `sluice_batch_size`, deltas), "
      "% of batches per size range:\n")
print("| step | batches | batches/s | mean size | " + " | ".join(names) + " | utilisation |")
print("|---|---:|---:|---:|" + "---:|" * len(names) + "---:|")
for tag, env, b in steps:
    m = model_of(b)
    label = f"{env['label']} @ {float(env['rate']):g}"
    if not m:
        print(f"| {label} | – | – | – | " + " | ".join("–" for _ in names) + " | – |")
        continue
    by_le = {bk["le"]: bk["batches"] for bk in m["batch_size_buckets"]}
    n = m["batches"]
    cells = []
    for le in edges:
        v = by_le.get(le)
        cells.append("–" if v is None else ("0" if v == 0 else pct(v, n)))
    u = m.get("utilization_after")
    dur = b["overall"]["duration_s"]
    print(f"| {label} | {n:.0f} | {n / dur:.0f} | {m['mean_batch_size']:.1f} | " + " | ".join(cells) +
          f" | {'–' if u is None else f'{100 * u:.0f} %'} |")
print("\n– = not a bucket of that step's histogram (its bounds are the powers of 2 below "
      "max_batch_size, then max_batch_size).")
print("utilisation = `sluice_accelerator_utilization` at the end of the step (busy fraction of the "
      "backend slots over the gateway's last 10 s); a slot is busy from sending a batch to its reply, "
      "HTTP round trip included.\n")

# CPU.
print("CPU over each step (warm-up, measured time and drain), % of one CPU:\n")
print("| step | sluice serve | model-servers (all) | sluice bench | other processes |")
print("|---|---:|---:|---:|---:|")
noisy = []
for tag, env, b in steps:
    s, m_, g = cpu(env, "sluice_ticks"), cpu(env, "ms_ticks"), cpu(env, "bench_ticks")
    busy = cpu(env, "busy_ticks")
    other = None if busy is None else max(0.0, busy - s - m_ - g)
    label = f"{env['label']} @ {float(env['rate']):g}"
    if other is not None and other >= 10:
        noisy.append(label)
    f = lambda v: "–" if v is None else f"{v:.0f} %"
    print(f"| {label} | {f(s)} | {f(m_)} | {f(g)} | {f(other)} |")
print()
if noisy:
    print(f"**NOISY**: other processes used >= 10 % of a CPU during: {', '.join(noisy)}; "
          "those latencies are pessimistic.\n")

# Generator.
print("Generator:\n")
for tag, env, b in steps:
    g = b["generator"]
    label = f"{env['label']} @ {float(env['rate']):g}"
    print(f"- {label}: {'FELL BEHIND its schedule' if g['fell_behind'] else 'kept to its schedule'} "
          f"({g['late']} requests late > {g['late_threshold_ms']} ms, schedule lag p99 "
          f"{ms(g['schedule_lag_ms']['p99'])}), {g['connection_waits']} waited for a connection, "
          f"{g['connections_open']} connections open, {g['connect_failures']} connect failures, "
          f"busiest load thread {100 * g['max_thread_busy']:.0f} % of a core")
    for w in b.get("warnings") or []:
        print(f"  - warning (sluice bench): {w}")
print()

# Comparison.
by = {tag: (env, b) for tag, env, b in steps}

def ach(tag):
    return by[tag][1]["overall"]["all"]["achieved_rps"]

def sustained(tag):
    env, b = by[tag]
    a = b["overall"]["all"]
    return a["scheduled"] > 0 and a["ok"] / a["scheduled"] >= 0.999 and \
        a["achieved_rps"] >= 0.99 * a["offered_rps"]

def lat(tag, q):
    return by[tag][1]["overall"]["all"]["latency_ms"][q]

print("Comparison:\n")
rate = float(e["RATE"])
bh, nh = ach("batch-high"), ach("nobatch-high")
print(f"- at {rate:g} req/s: batching {'sustained' if sustained('batch-high') else 'did NOT sustain'} it "
      f"({bh:.0f} req/s, p99 {ms(lat('batch-high', 'p99'))}); no batching "
      f"{'sustained' if sustained('nobatch-high') else 'did not'} ({nh:.0f} req/s = "
      f"{pct(nh, cap_one)} of its theoretical {cap_one:.0f}, p50 {ms(lat('nobatch-high', 'p50'))})")
print(f"- **achieved throughput batching / no batching at {rate:g} req/s: "
      f"{'–' if nh == 0 else f'{bh / nh:.1f}x'}**")
if "batch-low" in by:
    low = float(e["LOW_RATE"])
    bl, nl = ach("batch-low"), ach("nobatch-low")
    def r(a, b_):
        return "–" if not a or not b_ else f"{a / b_:.2f}"
    print(f"- at {low:g} req/s: batching {'sustained' if sustained('batch-low') else 'did NOT sustain'} it, "
          f"no batching {'sustained' if sustained('nobatch-low') else 'did NOT sustain'} it; achieved "
          f"throughput batching / no batching {r(bl, nl)}; latency batching / no batching: p50 "
          f"{ms(lat('batch-low', 'p50'))} / {ms(lat('nobatch-low', 'p50'))}, p99 "
          f"{ms(lat('batch-low', 'p99'))} / {ms(lat('nobatch-low', 'p99'))}")
print("- sustained = >= 99.9 % of requests answered 200 and achieved >= 99 % of offered")

unexpected = sum(b["overall"]["all"]["other"] for _, _, b in steps)
if unexpected:
    print(f"\n**{unexpected} requests got transport errors, timeouts or unexpected statuses.**")
sys.exit(2 if unexpected else 0)
EOF
cat "$REPORT"
if (( SAVE )); then
  mkdir -p "$REPO_ROOT/bench/results"
  out="$REPO_ROOT/bench/results/backends-$(date -u +%Y-%m-%d-%H%M%S).md"
  cp "$REPORT" "$out"
  log "saved $out"
fi
case "$report_rc" in
  0) exit 0 ;;
  2) exit 2 ;;
  *) die "could not build the report (python exit $report_rc)" ;;
esac
