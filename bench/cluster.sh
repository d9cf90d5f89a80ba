#!/usr/bin/env bash
# cluster.sh: where the CPU goes in scale-out, per request.
#
# Starts the local cluster (scripts/local-cluster: Redis, PostgreSQL, 3
# `sluice model-server`s, 3 workers, 2 gateways) in a temp state dir, then
# for each rate in RATES runs `sluice bench` against GATEWAYS (1: gateway-1;
# 2: both, half the rate each) and reports, per request answered:
#   - Redis CPU (INFO cpu: used_cpu_sys + used_cpu_user; the kernel's share,
#     used_cpu_sys, in brackets),
#   - each role's CPU (utime + stime from /proc/PID/stat, summed per role),
#     and at the last rate gateway-1's and `sluice serve`'s CPU and context
#     switches per thread (threads are named: sluice-io-N, redis-conn, redis-sub, log-writer...),
# next to achieved rate, success and latency percentiles from the bench
# JSON. The same rates then run against `sluice serve` on the same config
# without its `redis:` section (one process, same model servers), for the
# single-process front door's CPU per request.
#
# Usage: bench/cluster.sh
# Environment: RATES (1000,2000,3000), DURATION (10s), WARMUP (2s),
#   MIX (enterprise=100), GATEWAYS (1), CONNECTIONS (512),
#   SLUICE_BIN (build/src/app/sluice), BENCH_KEYS (e.g. free=600,paid=10:
#   generated keys per tier, so that a tier mix is not rate-limited by the
#   demo keys; see scripts/local-cluster), REDIS_CLUSTER=1 (Redis Cluster,
#   3 + 3 nodes, QUEUE_SHARDS queue shards, default 3), PIN=1 (the
#   process measured against serve on a core of its own: gateway-1, then
#   serve, on CPU 0 and the cluster's other processes and the load
#   generator on CPU 1, so that neither figure depends on how busy they keep
#   the first core; this script's own probes (curl, redis-cli) are not
#   pinned; needs taskset and 2 CPUs or more).
# Loopback only; stops everything it started (by pid file) on exit.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

RATES=${RATES:-1000,2000,3000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
MIX=${MIX:-enterprise=100}
GATEWAYS=${GATEWAYS:-1}
CONNECTIONS=${CONNECTIONS:-512}
SLUICE_BIN=${SLUICE_BIN:-build/src/app/sluice}
PIN=${PIN:-0}
export SLUICE_BIN
STATE=$(mktemp -d /tmp/sluice-cluster-bench-XXXXXX)
export LOCAL_CLUSTER_DIR=$STATE
TICKS=$(getconf CLK_TCK)
SERVE_PID=""

cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  scripts/local-cluster down >/dev/null 2>&1 || true
  case "$STATE" in /tmp/sluice-cluster-bench-*) rm -rf "$STATE" ;; esac
}
trap cleanup EXIT

port_of() { awk -v n="$1" '$1 == n { print $2 }' "$STATE/ports"; }
# CPU seconds (user + system) in a stat file (/proc/PID/stat or
# /proc/PID/task/TID/stat: fields 14 and 15).
stat_cpu_s() {
  awk -v t="$TICKS" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "$1" 2>/dev/null || echo 0
}
cpu_s() { stat_cpu_s "/proc/$1/stat"; }  # PID: the whole process
# Redis's ports: every node of a Redis Cluster (REDIS_CLUSTER=1), else one.
redis_ports() {
  if [ -f "$STATE/redis-nodes" ]; then cat "$STATE/redis-nodes"; else port_of redis; fi
}
redis_all() {  # ARGS...: redis-cli ARGS on every Redis node, outputs concatenated
  local p
  for p in $(redis_ports); do redis-cli -p "$p" "$@"; done
}
redis_cpu_s() {  # [sys]: user + system seconds, or system seconds only
  local re='^used_cpu_(sys|user):'
  [ "${1:-}" = sys ] && re='^used_cpu_sys:'
  redis_all INFO cpu | tr -d '\r' |
    awk -F: -v re="$re" '$0 ~ re { s += $2 } END { printf "%.6f\n", s }'
}
# Sum of sluice_requests_total on a port's /metrics (answers of any status).
answered() {
  curl -s "http://127.0.0.1:$1/metrics" -H 'Authorization: Bearer svc-demo-token' |
    awk '/^sluice_requests_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}
pg_cpu_s() {  # the postmaster and its children (the backends do the work)
  local pm sum c
  pm=$(cat "$STATE/postgres.pid")
  sum=$(cpu_s "$pm")
  for c in $(pgrep -P "$pm"); do
    sum=$(awk -v a="$sum" -v b="$(cpu_s "$c")" 'BEGIN { print a + b }')
  done
  echo "$sum"
}
role_cpu_s() {  # ROLE: sum over its processes (NAME-*.pid in the state dir)
  local sum=0 f
  for f in "$STATE"/"$1"*.pid; do
    [ -f "$f" ] || continue
    sum=$(awk -v a="$sum" -v b="$(cpu_s "$(cat "$f")")" 'BEGIN { print a + b }')
  done
  echo "$sum"
}

# Per thread name of a pid: "name cpu_seconds context_switches" lines
# (threads of one name summed; the main thread is named after the process;
# switches voluntary + involuntary, from /proc/PID/task/TID/status).
thread_cpu() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' '_' <"$t/comm" 2>/dev/null)" \
      "$(stat_cpu_s "$t/stat")" \
      "$(awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' "$t/status" 2>/dev/null || echo 0)"
  done | awk '{ c[$1] += $2; x[$1] += $3 } END { for (k in c) print k, c[k], x[k] }'
}
# BEFORE AFTER N: a table of each thread name's CPU µs and context switches
# per request.
thread_table() {
  echo "| thread | CPU µs/req | context switches/req |"
  echo "|---|---:|---:|"
  join <(sort "$1") <(sort "$2") |
    awk -v n="$3" '{ d = $4 - $2; x = $5 - $3; t += d; tx += x
                     if (d > 0 || x > 0) printf "%s %.1f %.2f\n", $1, d * 1e6 / n, x / n }
                   END { printf "(all) %.1f %.2f\n", t * 1e6 / n, tx / n }' |
    sort -k2 -nr | awk '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
}

# PIN=1: CPU 0 for the measured process, CPU 1 for the rest.
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs 2 CPUs or more" >&2; exit 1; }
fi
pin() {  # CPU PID...: every thread of each PID (children forked later inherit it)
  local cpu=$1 pid
  shift
  [ "$PIN" = 1 ] || return 0
  for pid in "$@"; do
    # A process or thread that exits meanwhile (a PostgreSQL backend) is no
    # error.
    taskset -a -pc "$cpu" "$pid" >/dev/null 2>&1 || ! kill -0 "$pid" 2>/dev/null || return 1
  done
}
pin_all_but() {  # PID: every process of the local cluster but PID to CPU 1, PID to CPU 0
  local f pid
  [ "$PIN" = 1 ] || return 0
  for f in "$STATE"/*.pid; do
    pid=$(cat "$f" 2>/dev/null) || continue
    [ -n "$pid" ] && [ "$pid" != "$1" ] && kill -0 "$pid" 2>/dev/null || continue
    pin 1 "$pid" $(pgrep -P "$pid")
  done
  pin 0 "$1"
}
bench_cpus=()
[ "$PIN" = 1 ] && bench_cpus=(taskset -c 1)

run_bench() {  # URL RATE OUT
  local keys=()
  [ -s "$STATE/bench-keys" ] && keys=(--keys "$STATE/bench-keys")
  "${bench_cpus[@]}" "$SLUICE_BIN" bench --url "$1" --rate "$2" --duration "$DURATION" --warmup "$WARMUP" \
    --mix "$MIX" --connections "$CONNECTIONS" "${keys[@]}" --json >"$3"
}

summary() {  # JSON -> "achieved success p50 p95 p99"
  python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["overall"]["all"]
l = a["latency_ms"]
print("%.0f %.2f %.1f %.1f %.1f" % (a["achieved_rps"], 100 * (a["success_ratio"] or 0), l["p50"], l["p95"], l["p99"]))
' "$1"
}

per_req() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", c * 1e6 / n; else print "n/a" }'; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }

scripts/local-cluster up >"$STATE/up.log" 2>&1 || { cat "$STATE/up.log" >&2; exit 1; }
gw1=$(port_of gateway-1)
gw2=$(port_of gateway-2)
pin_all_but "$(cat "$STATE/gateway-1.pid")"
redis_all CONFIG RESETSTAT >/dev/null

echo "## Scale-out CPU per request (\`bench/cluster.sh\`, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
echo "- commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (working tree differs)'), binary \`$SLUICE_BIN\`; $(nproc) CPUs"
redis_kind="Redis"
[ -f "$STATE/redis-nodes" ] && redis_kind="Redis Cluster (3 masters + 3 replicas, queue_shards ${QUEUE_SHARDS:-3}; Redis CPU summed over the 6 nodes)"
echo "- local cluster: $redis_kind, PostgreSQL (request log), 3 model-servers (4 devices each), 3 workers, 2 gateways; load on $GATEWAYS gateway(s), mix $MIX, $DURATION per rate after $WARMUP warm-up, $CONNECTIONS connections"
echo "- CPU µs per answered request over the whole step (warm-up included in both CPU and answers)"
[ "$PIN" = 1 ] && echo "- PIN=1: gateway-1, then serve, alone on CPU 0; the cluster's other processes and the load generator on CPU 1"
echo
echo "| mode | offered req/s | achieved | success % | p50 ms | p95 ms | p99 ms | Redis µs/req (of it kernel) | gateways µs/req | workers µs/req | model-servers µs/req | PostgreSQL µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a rates <<<"$RATES"
for rate in "${rates[@]}"; do
  redis_all CONFIG RESETSTAT >/dev/null
  r0=$(redis_cpu_s); rs0=$(redis_cpu_s sys); g0=$(role_cpu_s gateway); w0=$(role_cpu_s worker); m0=$(role_cpu_s model-server)
  p0=$(pg_cpu_s)
  n0=$(( $(answered "$gw1") + $(answered "$gw2") )); n1_0=$(answered "$gw1")
  thread_cpu "$(cat "$STATE/gateway-1.pid")" >"$STATE/threads0.$rate"
  if [ "$GATEWAYS" = 2 ]; then
    half=$(awk -v r="$rate" 'BEGIN { print r / 2 }')
    run_bench "http://127.0.0.1:$gw1" "$half" "$STATE/b1.json" &
    run_bench "http://127.0.0.1:$gw2" "$half" "$STATE/b2.json"
    wait
  else
    run_bench "http://127.0.0.1:$gw1" "$rate" "$STATE/b1.json"
  fi
  n=$(( $(answered "$gw1") + $(answered "$gw2") - n0 ))
  r=$(delta "$r0" "$(redis_cpu_s)"); rs=$(delta "$rs0" "$(redis_cpu_s sys)"); g=$(delta "$g0" "$(role_cpu_s gateway)")
  w=$(delta "$w0" "$(role_cpu_s worker)"); m=$(delta "$m0" "$(role_cpu_s model-server)")
  p=$(delta "$p0" "$(pg_cpu_s)")
  read -r ach succ p50 p95 p99 <<<"$(summary "$STATE/b1.json")"
  redis_all INFO commandstats | tr -d '\r' >"$STATE/commandstats.$rate"
  echo "$n" >"$STATE/answered.$rate"
  thread_cpu "$(cat "$STATE/gateway-1.pid")" >"$STATE/threads1.$rate"
  echo $(( $(answered "$gw1") - n1_0 )) >"$STATE/answered-gw1.$rate"
  echo "| cluster | $rate | $ach$([ "$GATEWAYS" = 2 ] && echo ' (gw-1)') | $succ | $p50 | $p95 | $p99 | $(per_req "$r" "$n") ($(per_req "$rs" "$n") sys) | $(per_req "$g" "$n") | $(per_req "$w" "$n") | $(per_req "$m" "$n") | $(per_req "$p" "$n") |"
done

# Where Redis's time went at the last rate (commands run inside scripts are
# counted on their own and inside their EVALSHA's time too).
last=${rates[-1]}
echo
echo "Redis commands at $last req/s, per answered request (\`INFO commandstats\`; calls inside scripts also counted within EVALSHA):"
echo
echo "| command | calls/req | µs/req | µs/call |"
echo "|---|---:|---:|---:|"
awk -F'[:,=]' -v n="$(cat "$STATE/answered.$last")" '
  /^cmdstat_/ { name = substr($1, 9); calls[name] += $3; usec[name] += $5 }
  END { for (k in calls) if (n > 0 && usec[k] / n >= 0.05)
          printf "%s %.3f %.2f %.2f\n", k, calls[k] / n, usec[k] / n, usec[k] / calls[k] }' \
  "$STATE/commandstats.$last" | sort -k3 -nr | head -15 |
  awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }'
echo
echo "gateway-1's threads at $last req/s, CPU µs and context switches per request it answered (\`/proc/PID/task\`; \`sluice\` is the main thread, an I/O thread):"
echo
thread_table "$STATE/threads0.$last" "$STATE/threads1.$last" "$(cat "$STATE/answered-gw1.$last")"
echo

# The single process on the same config and model servers, without Redis.
for name in gateway-1 gateway-2 worker-0 worker-1 worker-2; do
  kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
done
# Gone before serve starts (their shutdown's CPU is not serve's), up to 15 s.
for _ in $(seq 150); do
  alive=0
  for name in gateway-1 gateway-2 worker-0 worker-1 worker-2; do
    kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null && alive=1
  done
  [ "$alive" = 0 ] && break
  sleep 0.1
done
python3 - "$STATE/cluster.yaml" "$STATE/serve.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# Drop the top-level redis: and worker: sections.
text = re.sub(r"(?m)^(redis|worker):\n(?:[ #].*\n|\n)*", "", text)
open(sys.argv[2], "w").write(text)
PY
"$SLUICE_BIN" serve --config "$STATE/serve.yaml" --port 0 >"$STATE/serve.out" 2>"$STATE/serve.log" &
SERVE_PID=$!
pin_all_but "$SERVE_PID"
for _ in $(seq 1 200); do
  grep -q 'listening on' "$STATE/serve.out" 2>/dev/null && break
  sleep 0.05
done
sp=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$STATE/serve.out" | head -1)
sp=${sp##*:}
for rate in "${rates[@]}"; do
  s0=$(cpu_s "$SERVE_PID"); m0=$(role_cpu_s model-server)
  p0=$(pg_cpu_s)
  n0=$(answered "$sp")
  thread_cpu "$SERVE_PID" >"$STATE/serve-threads0"
  run_bench "http://127.0.0.1:$sp" "$rate" "$STATE/s.json"
  n=$(( $(answered "$sp") - n0 ))
  thread_cpu "$SERVE_PID" >"$STATE/serve-threads1"
  echo "$n" >"$STATE/serve-answered"
  s=$(delta "$s0" "$(cpu_s "$SERVE_PID")"); m=$(delta "$m0" "$(role_cpu_s model-server)")
  p=$(delta "$p0" "$(pg_cpu_s)")
  read -r ach succ p50 p95 p99 <<<"$(summary "$STATE/s.json")"
  echo "| serve (one process) | $rate | $ach | $succ | $p50 | $p95 | $p99 | – | $(per_req "$s" "$n") (whole process) | – | $(per_req "$m" "$n") | $(per_req "$p" "$n") |"
done
echo
echo "\`sluice serve\`'s threads at $last req/s, CPU µs and context switches per request:"
echo
thread_table "$STATE/serve-threads0" "$STATE/serve-threads1" "$(cat "$STATE/serve-answered")"
