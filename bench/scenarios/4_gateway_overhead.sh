#!/usr/bin/env bash
# Scenario 4, gateway overhead: 5,000 req/s (tier mix 70/25/5) on a
# zero-latency sim (4 devices, fixed 0 us, per item 0 us, jitter 0,
# max_batch_delay_us 0, max_batch_size 32). The latency Sluice adds beyond
# queue wait and accelerator time comes from the Server-Timing `gateway;dur`
# of every 200 (sluice bench's gateway_overhead_ms histogram), cross-checked
# with the gateway's own sluice_gateway_overhead_seconds histogram (the
# /metrics delta over the run, warm-up included).
#
# Usage: bench/scenarios/4_gateway_overhead.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), OVERHEAD_RATE (5000), ADMISSION, and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; RATE=${OVERHEAD_RATE:-5000}
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 4
meta "$OUT" rate "$RATE"

CFG_OVERRIDES=(devices=4 fixed_latency_us=0 per_item_latency_us=0 jitter=0 max_batch_size=32 max_batch_delay_us=0)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections 256
            --mix free=70,paid=25,enterprise=5)
log "scenario 4 (gateway overhead): $RATE req/s for $DURATION on a zero-latency sim"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
