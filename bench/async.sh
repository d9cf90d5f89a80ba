#!/usr/bin/env bash
# async.sh: asynchronous work fills the capacity synchronous traffic leaves
# idle, and never delays it (issue 13's measure).
#
# `sluice serve` on a copy of config/sluice.yaml (rate limits off, $DEVICES
# sim devices of the bundled model, a queue deep enough for the backlog),
# twice, each time with synchronous enterprise traffic at $SYNC_SHARE x the
# devices' capacity for $DURATION:
#   1. alone;
#   2. alongside async submissions (`sluice bench --async`, the paid key) at
#      $ASYNC_SHARE x the capacity for the same $DURATION.
# Prints the synchronous p50/p95/p99 of both runs and the p95 ratio; for
# run 2 the async submissions accepted, how long the backlog took to be
# done, and the devices' busy fraction from the start of the load until the
# backlog was done (the growth of sluice_accelerator_batch_seconds_sum over
# devices x time, sampled each second), with its lowest one-second value.
# Also the synchronous requests' queue-wait p95 as the server measured it
# (sluice_queue_wait_seconds, which async answers do not feed; interpolated
# within the histogram's buckets), the scheduling's share of the latency.
#
# The capacity is the bundled model's: $DEVICES x max_batch_size 32 / (34 ms
# + 32 x 0.5 ms) = $DEVICES x 640 req/s.
#
# REDIS=1 runs `serve` with a `redis:` section (a redis-server of its own):
# the gateway and the workers in one process, through Redis, as in
# scale-out (the gateway holds the async backlog and feeds it to Redis).
#
# Usage: bench/async.sh
# Environment: DEVICES (4), DURATION (15s), WARMUP (2s), SYNC_SHARE (0.5),
#   ASYNC_SHARE (3), REDIS (0), and those of bench/lib.sh (SLUICE_BIN,
#   SERVER_CPU, CLIENT_CPU). Loopback only; stops what it started by pid.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
DEVICES=${DEVICES:-4}; DURATION=${DURATION:-15s}; WARMUP=${WARMUP:-2s}
SYNC_SHARE=${SYNC_SHARE:-0.5}; ASYNC_SHARE=${ASYNC_SHARE:-3}; REDIS=${REDIS:-0}
lib_install_trap; ensure_tools; ensure_sluice
OUT=$(mktemp -d /tmp/sluice-async-bench-XXXXXX)
capacity=$(( DEVICES * 640 ))
sync_rate=$(awk -v c="$capacity" -v s="$SYNC_SHARE" 'BEGIN { printf "%d", c * s }')
async_rate=$(awk -v c="$capacity" -v s="$ASYNC_SHARE" 'BEGIN { printf "%d", c * s }')
seconds=$(( $(to_seconds "$DURATION") + $(to_seconds "$WARMUP") ))
bound=$(( seconds + 60 ))
# The backlog: (ASYNC_SHARE - 1 + SYNC_SHARE) x capacity x seconds, with room.
depth=$(awk -v c="$capacity" -v a="$ASYNC_SHARE" -v t="$seconds" 'BEGIN { printf "%d", c * a * t * 1.5 + 10000 }')

# configure DIR: the run's config in DIR/sluice.yaml (and its Redis when REDIS=1).
configure() {
  make_config "$1/sluice.yaml" devices="$DEVICES" queue_capacity="$depth"
  if [[ $REDIS == 1 ]]; then
    start_redis "$1"
    redis_section >>"$1/sluice.yaml"
  fi
}
metric() {  # FILE NAME: the sum of NAME's samples in a scrape
  awk -v n="$1" '($1 == n || index($1, n "{") == 1) { s += $NF } END { printf "%.6f\n", s }' "$2"
}
sync_run() {  # DIR TAG: the synchronous enterprise load; JSON in DIR/TAG.json
  run_bench "$1" "$2" "$bound" --rate "$sync_rate" --duration "$DURATION" --warmup "$WARMUP" \
    --connections 256 --mix enterprise=1 || true
}
queue_p95() {  # PROM: p95 ms of the synchronous requests' queue wait, server side (interpolated in the histogram's buckets)
  python3 - "$1" <<'PY'
import re, sys
def quantile(name, match, q):
    buckets = {}
    for line in open(sys.argv[1]):
        if not line.startswith(name + "_bucket{") or match not in line:
            continue
        le = re.search(r'le="([^"]+)"', line).group(1)
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0) + float(line.split()[-1])
    if not buckets:
        return float("nan")
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    prev_b, prev_c = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= q * total:
            if b == float("inf"):
                return prev_b * 1000
            return 1000 * (prev_b + (b - prev_b) * (q * total - prev_c) / max(buckets[b] - prev_c, 1e-9))
        prev_b, prev_c = b, buckets[b]
    return float("nan")
print("%.1f" % quantile("sluice_queue_wait_seconds", "", 0.95))
PY
}
latencies() {  # JSON: "p50 p95 p99 success%" of all requests
  python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["overall"]["all"]
l = a["latency_ms"]
print("%.1f %.1f %.1f %.2f" % (l["p50"], l["p95"], l["p99"], 100 * (a["success_ratio"] or 0)))
' "$1"
}

# 1. Synchronous traffic alone.
dir="$OUT/sync"; mkdir -p "$dir"
configure "$dir"
start_sluice "$dir/sluice.yaml" "$dir"
sync_run "$dir" sync
scrape_metrics "$dir/after.prom" || true
stop_sluice
stop_redis
read -r a50 a95 a99 asucc < <(latencies "$dir/sync.json")
aq95=$(queue_p95 "$dir/after.prom")

# 2. The same, with async submissions at ASYNC_SHARE x capacity.
dir="$OUT/mixed"; mkdir -p "$dir"
configure "$dir"
start_sluice "$dir/sluice.yaml" "$dir"
timeout -k 5 "$bound" taskset -c "$CLIENT_CPU" "$SLUICE_BIN" bench --url "http://127.0.0.1:$SLUICE_PORT" \
  --service-token "$SERVICE_TOKEN" --async --rate "$async_rate" --duration "$DURATION" \
  --warmup "$WARMUP" --connections 256 --mix paid=1 \
  --json >"$dir/async.json" 2>"$dir/async.err" &
SIDECAR_PID=$!
# One sample a second until the async backlog is done: seconds since the
# start, busy seconds so far, queue depth, tasks pending.
(
  start=$(date +%s.%N)
  for (( i = 0; i < bound + 600; i++ )); do
    scrape_metrics "$dir/m.prom" || break
    now=$(date +%s.%N)
    echo "$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.3f", b - a }') \
$(metric sluice_accelerator_batch_seconds_sum "$dir/m.prom") \
$(metric sluice_queue_depth "$dir/m.prom") $(metric sluice_async_tasks_pending "$dir/m.prom") \
$(metric sluice_async_tasks_created_total "$dir/m.prom")" >>"$dir/samples.txt"
    sleep 1
  done
) &
sampler=$!
sync_run "$dir" sync
wait "$SIDECAR_PID" || log "the async generator exited with an error; see $dir/async.err"
SIDECAR_PID=""
# Done when every task was answered after the load ended (bounded by the loop).
for (( i = 0; i < 600; i++ )); do
  last=$(tail -n 1 "$dir/samples.txt" 2>/dev/null || true)
  [[ -n $last ]] && awk -v l="$last" 'BEGIN { split(l, f, " "); exit !(f[4] == 0 && f[3] == 0) }' && break
  sleep 1
done
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
scrape_metrics "$dir/after.prom" || true
stop_sluice
stop_redis
read -r b50 b95 b99 bsucc < <(latencies "$dir/sync.json")
bq95=$(queue_p95 "$dir/after.prom")
accepted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["overall"]["all"]["ok"])' "$dir/async.json" 2>/dev/null || echo "n/a")
# Busy fraction: from the first sample with work to the first with none left.
read -r busy lowest drained < <(awk -v d="$DEVICES" '
  { t[NR] = $1; b[NR] = $2; q[NR] = $3; p[NR] = $4; c[NR] = $5 }
  END {
    first = 0; last = 0
    for (i = 1; i <= NR; i++) if (!first && c[i] > 0) first = i
    for (i = first + 1; i <= NR; i++) if (p[i] == 0 && q[i] == 0) { last = i; break }
    if (!first || !last || last <= first) { print "n/a n/a n/a"; exit }
    low = 1
    for (i = first + 1; i < last; i++) {
      f = (b[i] - b[i - 1]) / (d * (t[i] - t[i - 1])); if (f < low) low = f
    }
    printf "%.3f %.3f %.1f\n", (b[last] - b[first]) / (d * (t[last] - t[first])), low, t[last] - t[first]
  }' "$dir/samples.txt")

echo "## Async work beside synchronous traffic (\`bench/async.sh\`, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
where="one process"
[[ $REDIS == 1 ]] && where="serve through Redis (gateway + workers, as in scale-out)"
echo "- commit $(git -C "$REPO_ROOT" rev-parse --short HEAD); $where; $DEVICES devices (capacity $capacity req/s); enterprise sync at $sync_rate req/s, async (paid) at $async_rate req/s, each for $DURATION after $WARMUP; server on CPU $SERVER_CPU, generators on CPU $CLIENT_CPU"
echo
echo "| run | sync p50 ms | sync p95 ms | sync p99 ms | sync success % | sync queue-wait p95 ms |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| sync alone | $a50 | $a95 | $a99 | $asucc | $aq95 |"
echo "| with async | $b50 | $b95 | $b99 | $bsucc | $bq95 |"
echo
echo "- sync p95 with async ÷ alone: $(awk -v a="$a95" -v b="$b95" 'BEGIN { printf "%.3f", b / a }')"
echo "- async submissions accepted (after the warm-up): $accepted; backlog done $drained s after the load began"
echo "- devices busy from the start of the load until the backlog was done: $busy (lowest second: $lowest)"
case "$OUT" in /tmp/sluice-async-bench-*) rm -rf "$OUT" ;; esac
