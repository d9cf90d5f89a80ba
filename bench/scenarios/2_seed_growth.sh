#!/usr/bin/env bash
# Scenario 2, seed growth: 10,000 req/s offered (tier mix 70/25/5) against 34
# sim devices (the seeds' figure) at 32 items ~ 50 ms. Target: p95 < 500 ms
# with >= 99.9 % success. On this 2-core machine the gateway (CPU 0) and the
# generator (CPU 1) each get one core; the report says what was achieved and
# why (generator lag, server CPU, shed reasons from /metrics).
#
# Usage: bench/scenarios/2_seed_growth.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), GROWTH_RATE (10000), GROWTH_DEVICES (34),
# GROWTH_CONNECTIONS (2048), ADMISSION (seed|on|off), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; RATE=${GROWTH_RATE:-10000}; DEVICES=${GROWTH_DEVICES:-34}
CONNECTIONS=${GROWTH_CONNECTIONS:-2048}
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 2
meta "$OUT" rate "$RATE"

# Admission's depth bounds are the bundled file's, unscaled: they are per
# healthy device (max_queue_depth_per_device), so they grow with the fleet.
CFG_OVERRIDES=(devices="$DEVICES" fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
            --mix free=70,paid=25,enterprise=5)
log "scenario 2 (seed growth): $RATE req/s for $DURATION on $DEVICES sim devices"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
