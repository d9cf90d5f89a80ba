#!/usr/bin/env bash
# cache.sh: what the result cache and request collapsing save on a workload
# whose hot inputs repeat (issue 13's measure).
#
# `sluice serve` on a copy of config/sluice.yaml (rate limits off, the
# bundled model's 4 sim devices, `deterministic: true`) four times: with the
# model's `cache:` enabled, with `collapse: true` only, with both, and with
# neither, each under the same `sluice bench --input-dist zipf:$ZIPF_S
# --input-pool $POOL` at $RATE req/s for $DURATION; prints per run the
# achieved rate, success, p50/p95, the accelerator items (batched requests,
# from /metrics) per answered request (200s), the cache's hits, the
# collapsed requests and the cache's entries.
#
# REDIS=1 runs `serve` with a `redis:` section (a redis-server of its own
# per run): the gateway and the workers in one process through Redis, as in
# scale-out (the cache in Redis, collapsing through it).
#
# Usage: bench/cache.sh
# Environment: RATE (2000), DURATION (20s), WARMUP (2s), ZIPF_S (1.1),
#   POOL (10000), CONNECTIONS (256), REDIS (0), and those of bench/lib.sh
#   (SLUICE_BIN, SERVER_CPU, CLIENT_CPU). Loopback only; stops what it
#   started by pid.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
RATE=${RATE:-2000}; DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-2s}
ZIPF_S=${ZIPF_S:-1.1}; POOL=${POOL:-10000}; CONNECTIONS=${CONNECTIONS:-256}; REDIS=${REDIS:-0}
lib_install_trap; ensure_tools; ensure_sluice
OUT=$(mktemp -d /tmp/sluice-cache-bench-XXXXXX)
bound=$(( $(to_seconds "$DURATION") + $(to_seconds "$WARMUP") + 60 ))

# The model's savers switched on or off: `deterministic: true` (every answer
# may be shared), its cache block's `enabled:` and its `collapse:`.
set_savers() {  # CFG cache(true|false) collapse(true|false)
  # The cache block's lines are those indented deeper than its `cache:` line.
  awk -v cache="$2" -v collapse="$3" '
    function indent(s) { match(s, /^[[:space:]]*/); return RLENGTH }
    in_cache && /[^[:space:]]/ && indent($0) <= cache_indent { in_cache = 0 }
    /^[[:space:]]*cache:[[:space:]]*$/ { in_cache = 1; cache_indent = indent($0); print; next }
    in_cache && /^[[:space:]]*enabled:/ { sub(/enabled:.*/, "enabled: " cache) }
    !in_cache && /^[[:space:]]*deterministic:/ { sub(/deterministic:.*/, "deterministic: true") }
    !in_cache && /^[[:space:]]*collapse:/ { sub(/collapse:.*/, "collapse: " collapse) }
    { print }' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
  local got
  got=$(awk '/^[[:space:]]*cache:[[:space:]]*$/ { c = 1; next }
             c && /enabled:/ { e = $2; c = 0 } /^[[:space:]]*deterministic:/ { d = $2 }
             /^[[:space:]]*collapse:/ { k = $2 } END { print e, k, d }' "$1")
  [[ $got == "$2 $3 true" ]] ||
    die "could not set cache.enabled: $2, collapse: $3 and deterministic: true in $1 (got $got)"
}
metric() {  # FILE NAME [LABEL]: the sum of NAME's samples (with LABEL, e.g. code="200") in a scrape
  awk -v n="$2" -v l="${3:-}" '($1 == n || index($1, n "{") == 1) && index($1, l) { s += $NF }
    END { printf "%.0f\n", s }' "$1"
}

echo "## Result cache on a Zipf workload (\`bench/cache.sh\`, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
where="one process"
[[ $REDIS == 1 ]] && where="serve through Redis (gateway + workers, as in scale-out)"
echo "- commit $(git -C "$REPO_ROOT" rev-parse --short HEAD), $where, $RATE req/s for $DURATION after $WARMUP, inputs zipf:$ZIPF_S over $POOL, $CONNECTIONS connections; server on CPU $SERVER_CPU, generator on CPU $CLIENT_CPU"
echo
echo "| savers | achieved req/s | success % | p50 ms | p95 ms | accelerator items / answered | cache hits | collapsed | cache entries |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in cache collapse both neither; do
  case $mode in
    cache) cache=true collapse=false ;;
    collapse) cache=false collapse=true ;;
    both) cache=true collapse=true ;;
    neither) cache=false collapse=false ;;
  esac
  dir="$OUT/$mode"; mkdir -p "$dir"
  make_config "$dir/sluice.yaml"
  set_savers "$dir/sluice.yaml" "$cache" "$collapse"
  if [[ $REDIS == 1 ]]; then
    start_redis "$dir"
    redis_section >>"$dir/sluice.yaml"
  fi
  start_sluice "$dir/sluice.yaml" "$dir"
  scrape_metrics "$dir/before.prom"
  run_bench "$dir" bench "$bound" --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
    --connections "$CONNECTIONS" --input-dist "zipf:$ZIPF_S" --input-pool "$POOL" || true
  scrape_metrics "$dir/after.prom"
  stop_sluice
  stop_redis
  answered=$(( $(metric "$dir/after.prom" sluice_requests_total 'status="200"') - $(metric "$dir/before.prom" sluice_requests_total 'status="200"') ))
  items=$(( $(metric "$dir/after.prom" sluice_batch_size_sum) - $(metric "$dir/before.prom" sluice_batch_size_sum) ))
  read -r ach succ p50 p95 < <(python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["overall"]["all"]
l = a["latency_ms"]
print("%.0f %.2f %.1f %.1f" % (a["achieved_rps"], 100 * (a["success_ratio"] or 0), l["p50"], l["p95"]))
' "$dir/bench.json")
  per=$(awk -v i="$items" -v n="$answered" 'BEGIN { if (n > 0) printf "%.3f", i / n; else print "n/a" }')
  echo "| $mode | $ach | $succ | $p50 | $p95 | $per | $(metric "$dir/after.prom" sluice_cache_hits_total) | $(metric "$dir/after.prom" sluice_collapsed_requests_total) | $(metric "$dir/after.prom" sluice_cache_entries) |"
done
case "$OUT" in /tmp/sluice-cache-bench-*) rm -rf "$OUT" ;; esac
