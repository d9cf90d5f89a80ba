#!/usr/bin/env bash
# Scenario 11, capacity plan: `sluice plan` (the fewest devices whose
# simulated p95 of every tier stays < 500 ms with >= 99.9 % success at the
# peak, by simulating the gateway's scheduler) for 1,000 and 10,000 req/s
# with a peak of 3 x the average, and with no peak (--peak 1), on the bundled
# config (4 sim devices' model: 34 ms + 0.5 ms per item, max_batch_size 32).
# bench/report.py sets the answers beside plan's own arithmetic line and the
# seeds' arithmetic (426 req/s per GPU at 70 %: 4 GPUs for 1,000 req/s, 34
# for 10,000). Nothing is measured (virtual time).
#
# Usage: bench/scenarios/11_plan.sh OUT_DIR
# Environment: PLAN_RATES (1000,10000), PLAN_P95_MS (500), PLAN_PEAK (3), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
RATES=${PLAN_RATES:-1000,10000}; P95=${PLAN_P95_MS:-500}; PEAK=${PLAN_PEAK:-3}
[[ $RATES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "PLAN_RATES must be rates separated by commas (got '$RATES')"
ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 11
meta "$OUT" rates "$RATES"
meta "$OUT" p95_ms "$P95"
meta "$OUT" peak "$PEAK"
for rate in ${RATES//,/ }; do
  peaks=("$PEAK"); [[ $PEAK == 1 ]] || peaks+=(1)
  for peak in "${peaks[@]}"; do
    cmd=("$SLUICE_BIN" plan --config "$BASE_CONFIG" --rate "$rate" --p95-ms "$P95" --peak "$peak")
    meta "$OUT" "cmd_${rate}_$peak" "$(cmd_text "${cmd[@]}")"
    log "scenario 11 (plan): $rate req/s, peak $peak, p95 < $P95 ms"
    rc=0
    timeout 300 "${cmd[@]}" >"$OUT/plan-$rate-$peak.txt" 2>"$OUT/plan-$rate-$peak.err" || rc=$?
    meta "$OUT" "rc_${rate}_$peak" "$rc"
    (( rc == 0 || rc == 1 )) || die "sluice plan failed (exit $rc): $(tail -n 3 "$OUT/plan-$rate-$peak.err")"
  done
done
