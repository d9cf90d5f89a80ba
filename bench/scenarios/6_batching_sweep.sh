#!/usr/bin/env bash
# Scenario 6, static vs adaptive batching: the bundled model (4 sim devices,
# 34 ms + 0.5 ms per item, max_batch_size 32, max_batch_delay_us 20000,
# jitter 0, admission on, tier mix 70/25/5) under a rising ramp of rates
# (SWEEP_STEPS: 20, 200, 1000, 2000, 2560 = capacity 4 x 32 / 50 ms, 3840 =
# 1.5 x capacity; STEP_DURATION each, back to back on one gateway), run
# twice: once with `batching: static` (a batch waits up to max_batch_delay
# for more requests) and once with `batching: adaptive` (a lone request goes
# at once; it waits only when the load needs fuller batches). Each mode gets
# its own fresh `sluice serve`. bench/report.py puts p50 / p99 / achieved
# req/s / mean batch per step side by side and checks: adaptive never worse
# than static (noise allowance max(2 ms, 5 %)), adaptive p50 at the lowest
# rate <= 1.15 x the batch-of-one cost, mean batch >= 30 at steps >= 95 % of
# capacity.
#
# Usage: bench/scenarios/6_batching_sweep.sh OUT_DIR
# Environment: SWEEP_STEPS (20,200,1000,2000,2560,3840), STEP_DURATION (15s),
# WARMUP (3s), SWEEP_CONNECTIONS (2048), SWEEP_MODES (static,adaptive),
# ADMISSION (on here unless ADMISSION=off), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
STEPS=${SWEEP_STEPS:-20,200,1000,2000,2560,3840}
STEP_DURATION=${STEP_DURATION:-15s}; WARMUP=${WARMUP:-3s}; CONNECTIONS=${SWEEP_CONNECTIONS:-2048}
MODES=${SWEEP_MODES:-static,adaptive}
[[ $STEPS =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] || die "SWEEP_STEPS must be rates separated by commas (got '$STEPS')"
[[ $MODES =~ ^(static|adaptive)(,(static|adaptive))*$ ]] || die "SWEEP_MODES must be static and/or adaptive (got '$MODES')"
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 6
meta "$OUT" steps "$STEPS"
meta "$OUT" modes "$MODES"
meta "$OUT" step_duration "$STEP_DURATION"
meta "$OUT" capacity 2560
meta "$OUT" batch_of_one_ms 34.5

nsteps=$(tr ',' '\n' <<<"$STEPS" | wc -l)
bound=$(( $(to_seconds "$WARMUP") + nsteps * $(to_seconds "$STEP_DURATION") + 60 ))
rc=0
for mode in ${MODES//,/ }; do
  CFG_OVERRIDES=(devices=4 fixed_latency_us=34000 per_item_latency_us=500 jitter=0 max_batch_size=32
                 max_batch_delay_us=20000 admission=on batching="$mode")
  # shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
  BENCH_ARGS=(--ramp "$STEPS" --duration "$STEP_DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
              --mix free=70,paid=25,enterprise=5)
  log "scenario 6 (batching sweep): batching $mode, ramp $STEPS req/s, $STEP_DURATION per step, 4 sim devices"
  mkdir -p "$OUT/$mode"; : >"$OUT/$mode/meta.env"
  run_load_scenario "$OUT/$mode" "$bound" || rc=$?
done
exit "$rc"
