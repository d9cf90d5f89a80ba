# shellcheck shell=bash
# bench/lib.sh: helpers shared by bench/run and bench/scenarios/*.sh.
# Source it (it sets no shell options of its own); it expects REPO_ROOT.
#
# What a scenario script gets from here
#   ensure_sluice            build build/src/app/sluice (scripts/setup sluice) if missing
#   make_config OUT K=V...   a copy of config/sluice.yaml with overrides, checked
#   start_sluice CFG DIR     taskset -c $SERVER_CPU sluice serve --port 0; sets
#                            SLUICE_PID and SLUICE_PORT (from its "listening" line)
#   run_bench DIR TAG BOUND ARGS  taskset -c $CLIENT_CPU sluice bench ARGS --json,
#                            bounded; JSON in DIR/TAG.json, generator CPU ticks
#                            in DIR/TAG.ticks
#   scrape_metrics FILE      GET /metrics with the service token, bounded
#   cpu_begin / cpu_end DIR  machine, server and generator CPU over a run,
#                            written to DIR/cpu.env (the noise check)
#   meta DIR KEY VALUE       one line of DIR/meta.env for bench/report.py
#   wait_idle                with IDLE_WAIT=N > 0, wait up to N s for a quiet machine
# Everything started here is stopped by PID from the EXIT trap that
# lib_install_trap sets (TERM, bounded, then KILL); nothing is killed by name.

SLUICE_BIN=${SLUICE_BIN:-$REPO_ROOT/build/src/app/sluice}
BASE_CONFIG=${BASE_CONFIG:-$REPO_ROOT/config/sluice.yaml}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SLUICE_IO_THREADS=${SLUICE_IO_THREADS:-1}
SERVICE_TOKEN=${SERVICE_TOKEN:-svc-demo-token}
IDLE_WAIT=${IDLE_WAIT:-0}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

SLUICE_PID=""
SLUICE_PORT=""
BENCH_PID=""   # the `timeout` that runs sluice bench
SIDECAR_PID="" # BENCH_SIDECAR's background shell (run_load_scenario)
REDIS_PID=""   # start_redis's redis-server

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# Seconds in a duration such as 15s, 500ms, 2m or 7 (seconds); prints an integer (rounded up).
to_seconds() {
  local d=$1
  case "$d" in
    *ms) awk -v v="${d%ms}" 'BEGIN { printf "%d", (v == int(v / 1000) * 1000) ? v / 1000 : int(v / 1000) + 1 }' ;;
    *s) echo $(( ${d%s} )) ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *[!0-9]*|'') die "bad duration '$d' (use e.g. 15s, 2m)" ;;
    *) echo $(( d )) ;;
  esac
}

# ---------------------------------------------------------------- tools
ensure_tools() {
  command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) not found"
  command -v curl >/dev/null 2>&1 || die "curl not found (apt-get install curl)"
  command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3)"
  local n
  n=$(nproc)
  (( n >= 2 )) || die "the suite pins the server and the generator to two CPUs; this machine has $n"
  (( SERVER_CPU != CLIENT_CPU && SERVER_CPU < n && CLIENT_CPU < n )) \
    || die "SERVER_CPU/CLIENT_CPU must be two different CPUs below $n"
}

ensure_sluice() {
  if [[ ! -x $SLUICE_BIN ]]; then
    [[ $SLUICE_BIN == "$REPO_ROOT/build/src/app/sluice" ]] || die "SLUICE_BIN '$SLUICE_BIN' is not an executable file"
    log "$SLUICE_BIN missing: building it (scripts/setup sluice)"
    timeout 3600 "$REPO_ROOT/scripts/setup" sluice >&2 || die "scripts/setup sluice failed"
    [[ -x $SLUICE_BIN ]] || die "scripts/setup did not produce $SLUICE_BIN"
  fi
  timeout 10 "$SLUICE_BIN" bench --help >/dev/null 2>&1 || die "'$SLUICE_BIN bench --help' failed (is it a build with the load generator?)"
}

# ---------------------------------------------------------------- config
# make_config OUT [key=value ...]. Keys: io_threads devices fixed_latency_us
# per_item_latency_us jitter max_batch_size max_batch_delay_us queue_capacity
# admission (on|off) batching (adaptive|static: the model's `batching`,
# replaced if the file has one, else added after max_batch_delay_us)
# depth_scale (N: multiplies every tier's absolute max_queue_depth; the
# bundled file's is 0, its bounds are per healthy device, so no scenario uses
# it). Always: port 0, requests_per_minute 0 and tokens_per_minute 0 for
# every tier (the demo keys are not throttled).
# The bundled config without its embedding model: the benches measure the
# completions model alone.
without_embedding_model() {
  awk '/^  - name: sluice-sim-embed/ { skip = 1; next }
       skip && /^[^[:space:]#]/ { skip = 0 }
       !skip { print }' "$1"
}

make_config() {
  local out=$1; shift
  [[ -f $BASE_CONFIG ]] || die "$BASE_CONFIG not found"
  local -A v=([io_threads]=$SLUICE_IO_THREADS)
  local kv
  for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
  local sed_args=(-e "s/^([[:space:]]*)port:[[:space:]]*[0-9]+/\1port: 0/"
                  -e "s/^([[:space:]]*)requests_per_minute:[[:space:]]*[0-9]+/\1requests_per_minute: 0/"
                  -e "s/^([[:space:]]*)tokens_per_minute:[[:space:]]*[0-9]+/\1tokens_per_minute: 0/"
                  -e "s#^([[:space:]]*)path: sluice-requests.db#\1path: $(dirname "$out")/requests.db#")
  local k
  for k in io_threads devices fixed_latency_us per_item_latency_us jitter max_batch_size max_batch_delay_us queue_capacity; do
    [[ -n ${v[$k]:-} ]] && sed_args+=(-e "s/^([[:space:]]*)$k:[^#]*/\1$k: ${v[$k]}/")
  done
  if [[ -n ${v[admission]:-} ]]; then
    local b
    case "${v[admission]}" in on) b=true ;; off) b=false ;; *) die "admission must be on or off" ;; esac
    sed_args+=(-e "/^admission:/,/^[^[:space:]#]/ s/^([[:space:]]+)enabled:[^#]*/\1enabled: $b/")
  fi
  without_embedding_model "$BASE_CONFIG" | sed -E "${sed_args[@]}" >"$out"
  if [[ -n ${v[depth_scale]:-} ]]; then
    awk -v k="${v[depth_scale]}" '
      match($0, /max_queue_depth:[[:space:]]*[0-9]+/) {
        n = substr($0, RSTART, RLENGTH); sub(/.*:[[:space:]]*/, "", n)
        if (n + 0 > 0) { sub(/max_queue_depth:[[:space:]]*[0-9]+/, "max_queue_depth: " n * k) }
      } { print }' "$out" >"$out.tmp" && mv "$out.tmp" "$out"
  fi
  if [[ -n ${v[batching]:-} ]]; then
    [[ ${v[batching]} == adaptive || ${v[batching]} == static ]] || die "batching must be adaptive or static"
    local has=0
    grep -qE '^[[:space:]]*batching:' "$out" && has=1
    awk -v m="${v[batching]}" -v has="$has" '
      has == 1 && match($0, /^[[:space:]]*batching:/) {
        ind = $0; sub(/[^[:space:]].*/, "", ind); print ind "batching: " m; next }
      { print }
      has == 0 && match($0, /^[[:space:]]*max_batch_delay_us:/) {
        ind = $0; sub(/[^[:space:]].*/, "", ind); print ind "batching: " m }' "$out" >"$out.tmp" && mv "$out.tmp" "$out"
  fi
  # Every override must be there (the layout of config/sluice.yaml may change).
  for k in io_threads devices fixed_latency_us per_item_latency_us jitter max_batch_size max_batch_delay_us queue_capacity batching; do
    if [[ -n ${v[$k]:-} ]]; then
      grep -qE "^[[:space:]]*$k: ${v[$k]}[[:space:]]*(#.*)?\$" "$out" \
        || die "could not set '$k: ${v[$k]}' in the copy of $BASE_CONFIG (has its layout changed?)"
    fi
  done
  if grep -qE '^[[:space:]]*(requests|tokens)_per_minute:[[:space:]]*[1-9]' "$out"; then
    die "could not set the rate limits to 0 in the copy of $BASE_CONFIG"
  fi
  if [[ -n ${v[admission]:-} ]] && ! awk '/^admission:/ { a = 1; next } a && /^[^[:space:]#]/ { a = 0 } a && /enabled:/ { print $2 }' "$out" \
      | grep -qx "$b"; then
    die "could not set admission.enabled: $b in the copy of $BASE_CONFIG"
  fi
}

# Prints "on" or "off": admission.enabled of a config file (absent: off).
admission_of() {
  local e
  e=$(awk '/^admission:/ { a = 1; next } a && /^[^[:space:]#]/ { a = 0 } a && /enabled:/ { print $2; exit }' "$1")
  if [[ $e == true ]]; then echo on; else echo off; fi
}

# Prints the first model's batching mode ("adaptive (default)" when absent).
batching_of() {
  local b
  b=$(awk '$1 == "batching:" { print $2; exit }' "$1")
  echo "${b:-adaptive (default)}"
}

# Prints admission's queue-depth bounds per tier, e.g. "enterprise none,
# paid 125/device, free 25/device" (absolute max_queue_depth and
# max_queue_depth_per_device; 0 or absent = none).
depth_bounds_of() {
  awk '
    function flush() {
      if (name == "") return
      b = ""
      if (abs + 0 > 0) b = abs
      if (per + 0 > 0) b = b (b == "" ? "" : " + ") per "/device"
      printf "%s%s %s", sep, name, (b == "" ? "none" : b); sep = ", "
      name = ""; abs = 0; per = 0
    }
    /^tiers:/ { t = 1; next }
    t && /^[^[:space:]#]/ { flush(); t = 0 }
    t && /-[[:space:]]*name:/ { flush(); name = $NF }
    t && $1 == "max_queue_depth:" { abs = $2 }
    t && $1 == "max_queue_depth_per_device:" { per = $2 }
    END { flush() }' "$1"
}

# ---------------------------------------------------------------- processes
# stop_pid PID [GRACE_S]: stops one process we started: TERM, up to GRACE_S
# (default 5) seconds, then KILL.
stop_pid() {
  local pid=$1 grace=${2:-5} i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < grace * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# BENCH_PID is the `timeout` we started (its own process group); TERM makes
# it pass TERM on to sluice bench and exit.
stop_bench() {
  stop_pid "$BENCH_PID"
  BENCH_PID=""
}

stop_sluice() {
  stop_pid "$SLUICE_PID"
  SLUICE_PID=""
}

# start_redis DIR: a redis-server of our own on a free loopback port (no
# persistence), for `serve` with a `redis:` section; sets REDIS_PORT and
# REDIS_PID. Neither can redis-server bind port 0 and report it, so a free
# port is picked and the server checked to be ours (its pid in INFO).
start_redis() {
  local dir=$1 attempt i port
  command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
  for (( attempt = 0; attempt < 5; attempt++ )); do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      </dev/null >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    for (( i = 0; i < 50; i++ )); do
      if redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | grep -q "^process_id:$REDIS_PID$"; then
        REDIS_PORT=$port
        log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
        return 0
      fi
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$REDIS_PID"
  done
  die "redis-server did not start; see $dir/redis.log"
}

# redis_section: the `redis:` section that points `serve` at start_redis's.
redis_section() {
  printf 'redis:\n  host: 127.0.0.1\n  port: %s\n  key_prefix: bench\n' "$REDIS_PORT"
}

stop_redis() {
  stop_pid "$REDIS_PID"
  REDIS_PID=""
}

lib_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SIDECAR_PID"
  stop_bench
  stop_sluice
  stop_redis
  exit "$rc"
}

lib_install_trap() {
  trap lib_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# start_sluice CFG DIR: the server on CPU $SERVER_CPU; stdout/stderr in DIR.
start_sluice() {
  local cfg=$1 dir=$2 i line=""
  local pre=()
  command -v stdbuf >/dev/null 2>&1 && pre=(stdbuf -oL -eL)
  # taskset and stdbuf exec, so $! is sluice's own pid.
  taskset -c "$SERVER_CPU" "${pre[@]}" "$SLUICE_BIN" serve --config "$cfg" --port 0 \
    </dev/null >"$dir/sluice.out" 2>"$dir/sluice.err" &
  SLUICE_PID=$!
  for (( i = 0; i < 200; i++ )); do     # ~20 s
    line=$(grep -h -m1 -oE 'sluice: listening on http://[^ ]+:[0-9]+' "$dir/sluice.out" 2>/dev/null | head -n1 || true)
    [[ -n $line ]] && break
    if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
      tail -n 20 "$dir/sluice.err" >&2 || true
      die "sluice exited during start-up (config $cfg)"
    fi
    sleep 0.1
  done
  [[ -n $line ]] || die "sluice did not print 'sluice: listening on http://...' within 20 s"
  SLUICE_PORT=${line##*:}
  local st
  st=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SERVICE_TOKEN" \
        "http://127.0.0.1:$SLUICE_PORT/internal/health" 2>/dev/null || echo 000)
  [[ $st == 200 ]] || die "sluice /internal/health answered $st (expected 200)"
  log "sluice pid $SLUICE_PID on 127.0.0.1:$SLUICE_PORT (CPU $SERVER_CPU, io_threads from $cfg)"
}

scrape_metrics() {  # FILE; returns 1 (and says so) if /metrics does not answer within 5 s
  curl -sS -f -m 5 -H "Authorization: Bearer $SERVICE_TOKEN" "http://127.0.0.1:$SLUICE_PORT/metrics" >"$1" \
    || { log "GET /metrics failed"; return 1; }
}

# run_bench DIR TAG BOUND_S ARGS...: sluice bench --json on CPU $CLIENT_CPU,
# killed after BOUND_S seconds. Leaves DIR/TAG.json, DIR/TAG.err and
# DIR/TAG.ticks (the generator's user+system CPU in clock ticks: the growth
# of this shell's children time across the wait, during which the only
# child reaped is that `timeout`, which has reaped sluice bench). Returns
# sluice bench's exit status.
run_bench() {
  local dir=$1 tag=$2 bound=$3; shift 3
  times >"$dir/$tag.times0"
  timeout -k 5 "$bound" taskset -c "$CLIENT_CPU" "$SLUICE_BIN" bench --url "http://127.0.0.1:$SLUICE_PORT" \
    --service-token "$SERVICE_TOKEN" "$@" --json >"$dir/$tag.json" 2>"$dir/$tag.err" &
  BENCH_PID=$!
  local rc=0
  wait "$BENCH_PID" || rc=$?
  times >"$dir/$tag.times1"
  BENCH_PID=""
  # second line of `times`: the children's user and system time (0m1.230s 0m2.340s)
  local t0 t1
  t0=$(children_ticks "$dir/$tag.times0"); t1=$(children_ticks "$dir/$tag.times1")
  echo $(( t1 - t0 )) >"$dir/$tag.ticks"
  if (( rc != 0 )); then
    log "sluice bench exited with status $rc ($tag); its stderr:"
    tail -n 20 "$dir/$tag.err" >&2 || true
  fi
  return "$rc"
}
children_ticks() {
  sed -n 2p "$1" 2>/dev/null | awk -v hz="$CLK_TCK" '{
      t = 0
      for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
      printf "%d\n", t * hz + 0.5 }
    END { if (NR == 0) print 0 }'
}

# ---------------------------------------------------------------- CPU / noise
# /proc/stat "cpu" line: user+nice+system (busy) and steal, in ticks.
stat_busy() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
stat_steal() { awk '$1 == "cpu" { print $9 + 0; exit }' /proc/stat; }
stat_busy_cpu() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4; exit }' /proc/stat; }
uptime_ticks() { awk -v hz="$CLK_TCK" '{ printf "%d", $1 * hz }' /proc/uptime; }
pid_ticks() {  # utime+stime of one process (all threads); 0 if gone
  local st
  st=$(cat /proc/"$1"/stat 2>/dev/null) || { echo 0; return; }
  awk '{ print $12 + $13 }' <<<"${st##*) }"
}

cpu_begin() {
  CPU_B0=$(stat_busy); CPU_S0=$(stat_steal); CPU_U0=$(uptime_ticks); CPU_P0=$(pid_ticks "$SLUICE_PID")
  CPU_SB0=$(stat_busy_cpu "$SERVER_CPU"); CPU_CB0=$(stat_busy_cpu "$CLIENT_CPU")
}

# cpu_end DIR GEN_TICKS: writes DIR/cpu.env (ticks and % of one CPU).
cpu_end() {
  local dir=$1 gen=$2 b1 s1 u1 p1 sb1 cb1
  b1=$(stat_busy); s1=$(stat_steal); u1=$(uptime_ticks); p1=$(pid_ticks "$SLUICE_PID")
  sb1=$(stat_busy_cpu "$SERVER_CPU"); cb1=$(stat_busy_cpu "$CLIENT_CPU")
  local wall=$(( u1 - CPU_U0 )) srv=$(( p1 - CPU_P0 )) busy=$(( b1 - CPU_B0 )) steal=$(( s1 - CPU_S0 ))
  local other=$(( busy - srv - gen ))
  (( other >= 0 )) || other=0
  # Pinned: all of the server's time is on SERVER_CPU, the generator's on
  # CLIENT_CPU; the rest of each CPU's busy time is other processes there.
  local other_s=$(( sb1 - CPU_SB0 - srv )) other_c=$(( cb1 - CPU_CB0 - gen ))
  (( other_s >= 0 )) || other_s=0
  (( other_c >= 0 )) || other_c=0
  {
    echo "other_server_cpu_ticks=$other_s"
    echo "other_client_cpu_ticks=$other_c"
    echo "clk_tck=$CLK_TCK"
    echo "wall_ticks=$wall"
    echo "server_ticks=$srv"
    echo "generator_ticks=$gen"
    echo "other_ticks=$other"
    echo "steal_ticks=$steal"
  } >"$dir/cpu.env"
  log "CPU over the run (% of one CPU): server $(pct "$srv" "$wall"), generator $(pct "$gen" "$wall"), other processes $(pct "$other" "$wall") ($(pct "$other_s" "$wall") on the server's CPU, $(pct "$other_c" "$wall") on the generator's), steal $(pct "$steal" "$wall")"
}
pct() { awk -v a="$1" -v w="$2" 'BEGIN { if (w <= 0) print "n/a"; else printf "%.0f%%", 100 * a / w }'; }

# With IDLE_WAIT > 0: wait (at most IDLE_WAIT s) until the machine's busy
# time is below 20% of one CPU over a 1-s sample (nothing of ours runs then).
wait_idle() {
  (( IDLE_WAIT > 0 )) || return 0
  local deadline=$(( SECONDS + IDLE_WAIT )) next_log=0 b0 b1 u0 u1 p
  while :; do
    b0=$(stat_busy); u0=$(uptime_ticks); sleep 1; b1=$(stat_busy); u1=$(uptime_ticks)
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

# ---------------------------------------------------------------- metadata
# meta DIR KEY VALUE...: one KEY=VALUE line (the value is the rest of the line).
meta() {
  local dir=$1 key=$2; shift 2
  printf '%s=%s\n' "$key" "$*" >>"$dir/meta.env"
}

# A command line as text, paths relative to the repository.
cmd_text() {
  local out="" a
  for a in "$@"; do
    [[ -n ${SLUICE_BIN_SHOWN:-} ]] && a=${a//"$SLUICE_BIN"/"$SLUICE_BIN_SHOWN"}
    a=${a//"$REPO_ROOT"\//}
    if [[ $a =~ [[:space:]\'\"\$\;\&\|\<\>\(\)\*\?] ]]; then a="'$a'"; fi
    out+="${out:+ }$a"
  done
  printf '%s' "$out"
}

# ---------------------------------------------------------------- one load scenario
# run_load_scenario DIR BOUND_S: the common body of scenarios 1, 2, 4 and 5.
# Uses the arrays CFG_OVERRIDES (make_config key=value) and BENCH_ARGS
# (sluice bench arguments, without --url/--json/--service-token). Writes into
# DIR: sluice.yaml, metrics-before.txt, bench.json (+ .err, .ticks),
# metrics-after.txt, cpu.env, meta.env. ADMISSION=on|off overrides the
# admission setting of every scenario. With BENCH_SIDECAR set to a function
# name, that function runs in the background (given DIR; SLUICE_PORT is set)
# from just before sluice bench starts until it ends, then is stopped by PID
# if still running. Returns sluice bench's exit status.
run_load_scenario() {
  local dir=$1 bound=$2
  mkdir -p "$dir"
  local overrides=("${CFG_OVERRIDES[@]}")
  case "${ADMISSION:-}" in
    on|off) overrides=("${overrides[@]/#admission=*/}" "admission=$ADMISSION") ;;
    ''|seed) ;;
    *) die "ADMISSION must be on, off or seed (got '$ADMISSION')" ;;
  esac
  local o clean=()
  for o in "${overrides[@]}"; do [[ -n $o ]] && clean+=("$o"); done
  make_config "$dir/sluice.yaml" "${clean[@]}"
  local k
  for k in devices fixed_latency_us per_item_latency_us jitter max_batch_size max_batch_delay_us queue_capacity io_threads; do
    meta "$dir" "cfg_$k" "$(awk -v k="$k:" '$1 == k { print $2; exit }' "$dir/sluice.yaml")"
  done
  meta "$dir" cfg_batching "$(batching_of "$dir/sluice.yaml")"
  meta "$dir" admission "$(admission_of "$dir/sluice.yaml")"
  meta "$dir" cfg_max_queue_depth "$(depth_bounds_of "$dir/sluice.yaml")"
  meta "$dir" overrides "${clean[*]}"
  meta "$dir" cmd_serve "$(cmd_text taskset -c "$SERVER_CPU" "$SLUICE_BIN" serve --config SCENARIO.yaml --port 0)"
  meta "$dir" cmd_bench "$(cmd_text taskset -c "$CLIENT_CPU" "$SLUICE_BIN" bench --url http://127.0.0.1:PORT --service-token "$SERVICE_TOKEN" "${BENCH_ARGS[@]}" --json)"
  wait_idle
  start_sluice "$dir/sluice.yaml" "$dir"
  scrape_metrics "$dir/metrics-before.txt" || die "GET /metrics failed before the run"
  cpu_begin
  local rc=0
  if [[ -n ${BENCH_SIDECAR:-} ]]; then
    "$BENCH_SIDECAR" "$dir" &
    SIDECAR_PID=$!
  fi
  run_bench "$dir" bench "$bound" "${BENCH_ARGS[@]}" || rc=$?
  stop_pid "$SIDECAR_PID"
  SIDECAR_PID=""
  cpu_end "$dir" "$(cat "$dir/bench.ticks")"
  scrape_metrics "$dir/metrics-after.txt" || true
  stop_sluice
  meta "$dir" bench_rc "$rc"
  return "$rc"
}
