#!/usr/bin/env bash
# Scenario 8, growth on half the seeds' fleet: 10,000 req/s offered (tier mix
# 70/25/5) against 17 sim devices (half of scenario 2's 34; capacity on full
# batches 17 x 640 = 10,880 req/s, so 92 % load) at 32 items ~ 50 ms,
# admission on with the bundled thresholds, unscaled (they are per healthy
# device). Target: p95 < 500 ms with >= 99.9 % success.
#
# Usage: bench/scenarios/8_growth_half_fleet.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), GROWTH_RATE (10000),
# HALF_FLEET_DEVICES (17), GROWTH_CONNECTIONS (2048), ADMISSION (on here
# unless ADMISSION=off), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; RATE=${GROWTH_RATE:-10000}; DEVICES=${HALF_FLEET_DEVICES:-17}
CONNECTIONS=${GROWTH_CONNECTIONS:-2048}
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 8
meta "$OUT" rate "$RATE"

CFG_OVERRIDES=(devices="$DEVICES" fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
            --mix free=70,paid=25,enterprise=5)
log "scenario 8 (growth, half fleet): $RATE req/s for $DURATION on $DEVICES sim devices"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
