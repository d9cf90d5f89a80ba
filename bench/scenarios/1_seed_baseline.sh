#!/usr/bin/env bash
# Scenario 1, seed baseline: 1,000 req/s (tier mix free 70 / paid 25 /
# enterprise 5) against 4 sim devices at 32 items ~ 50 ms (34000 us fixed +
# 500 us per item), max_batch_size 32. Reports p95 per tier, accelerator
# utilisation and mean batch size (bench/report.py renders them).
#
# Usage: bench/scenarios/1_seed_baseline.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), BASELINE_RATE (1000), ADMISSION
# (seed|on|off; seed = as in config/sluice.yaml), SLUICE_BIN, SERVER_CPU,
# CLIENT_CPU, SLUICE_IO_THREADS (1), IDLE_WAIT (0). See bench/README.md.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; RATE=${BASELINE_RATE:-1000}
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 1
meta "$OUT" rate "$RATE"

CFG_OVERRIDES=(devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections 256
            --mix free=70,paid=25,enterprise=5)
log "scenario 1 (seed baseline): $RATE req/s for $DURATION on 4 sim devices"
run_load_scenario "$OUT" $(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
