#!/usr/bin/env bash
# Scenario 5, capacity per device: one sim device at 32 items ~ 50 ms
# (theoretical maximum: max_batch_size / batch time = 32 / 0.050 s = 640
# req/s), a rising ramp of rates (sluice bench --ramp, one gateway, STEP_DURATION
# per step). A step passes when its p99 (200s) < 500 ms and >= 99.9 % of its
# requests succeed; the answer is the highest passing rate (the steps up to
# it all passing), as a fraction of 640. Admission is off by default here:
# with it on, the gateway refuses what it predicts would miss its deadline
# (near and above capacity), and the scenario would measure admission, not
# the device.
#
# Usage: bench/scenarios/5_capacity_per_device.sh OUT_DIR
# Environment: CAPACITY_STEPS (320,480,560,600,620,630,640,700), STEP_DURATION (15s),
# WARMUP (3s), CAPACITY_CONNECTIONS (2048), ADMISSION (off here unless ADMISSION=on), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
STEPS=${CAPACITY_STEPS:-320,480,560,600,620,630,640,700}
STEP_DURATION=${STEP_DURATION:-15s}; WARMUP=${WARMUP:-3s}; CONNECTIONS=${CAPACITY_CONNECTIONS:-2048}
[[ $STEPS =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] || die "CAPACITY_STEPS must be rates separated by commas (got '$STEPS')"
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 5
meta "$OUT" steps "$STEPS"
meta "$OUT" theoretical_max 640
meta "$OUT" step_duration "$STEP_DURATION"

CFG_OVERRIDES=(devices=1 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=off)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--ramp "$STEPS" --duration "$STEP_DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
            --mix free=70,paid=25,enterprise=5)
nsteps=$(tr ',' '\n' <<<"$STEPS" | wc -l)
log "scenario 5 (capacity per device): ramp $STEPS req/s, $STEP_DURATION per step, 1 sim device"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + nsteps * $(to_seconds "$STEP_DURATION") + 60 ))
