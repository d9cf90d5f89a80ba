#!/usr/bin/env bash
# Scenario 7, 3x overload: 7,680 req/s (3 x the capacity of 4 sim devices on
# full batches, 4 x 32 / 50 ms = 2,560 req/s), tier mix 70/25/5, admission
# on, bundled thresholds, against the bundled model (34 ms + 0.5 ms per item,
# max_batch_size 32, jitter as bundled). bench/report.py checks: goodput
# (200s/s) >= 95 % of 2,560, enterprise and paid 100 % success, no 504,
# every refusal a 503/429 given before queueing (the /metrics count of 503s
# equals the admission refusals, sluice_shed_total), accelerator
# utilisation >= 95 %.
#
# Usage: bench/scenarios/7_overload.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), OVERLOAD_RATE (7680),
# OVERLOAD_CONNECTIONS (2048), ADMISSION (on here unless ADMISSION=off), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; RATE=${OVERLOAD_RATE:-7680}
CONNECTIONS=${OVERLOAD_CONNECTIONS:-2048}
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 7
meta "$OUT" rate "$RATE"
meta "$OUT" capacity 2560

CFG_OVERRIDES=(devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
            --mix free=70,paid=25,enterprise=5)
log "scenario 7 (3x overload): $RATE req/s for $DURATION on 4 sim devices"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
