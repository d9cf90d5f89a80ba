#!/usr/bin/env bash
# Scenario 9, simulated vs measured: `sluice simulate` (the gateway's own
# scheduler in virtual time, simulated devices) on the configs, rates, tier
# mix and durations of three measured scenarios of the same suite run:
#   baseline  scenario 1: 1,000 req/s on 4 devices
#   overload  scenario 7: 7,680 req/s on 4 devices
#   growth    scenario 8: 10,000 req/s on 17 devices
# Nothing is measured here: bench/report.py sets each simulation's p95 and
# success beside the measured ones of s1 / s7 / s8 (when they ran in the same
# suite run) and says whether they agree within 10 % (relative for p95,
# percentage points for success). The config is the measured run's own
# generated sluice.yaml when OUT_DIR/../sN/ has it, else one generated here
# with the same overrides. Poisson arrivals (the verdict) and constant
# arrivals (what `sluice bench` sends by default) are both simulated.
#
# Usage: bench/scenarios/9_sim_vs_measured.sh OUT_DIR
# Environment: DURATION (20s), WARMUP (3s), BASELINE_RATE (1000),
# OVERLOAD_RATE (7680), GROWTH_RATE (10000), HALF_FLEET_DEVICES (17),
# ADMISSION, SIM_SEED (1), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
DURATION=${DURATION:-20s}; WARMUP=${WARMUP:-3s}; SEED=${SIM_SEED:-1}
RUN_DIR=$(cd "$OUT/.." 2>/dev/null && pwd || echo "")
ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 9
d=$(to_seconds "$DURATION"); w=$(to_seconds "$WARMUP")
meta "$OUT" duration_s "$d"
meta "$OUT" warmup_s "$w"

# case scenario rate overrides...
cases=(
  "baseline 1 ${BASELINE_RATE:-1000} devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32"
  "overload 7 ${OVERLOAD_RATE:-7680} devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on"
  "growth 8 ${GROWTH_RATE:-10000} devices=${HALF_FLEET_DEVICES:-17} fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on"
)
for c in "${cases[@]}"; do
  read -r name n rate overrides <<<"$c"
  cfg="$OUT/$name.yaml"
  measured="${RUN_DIR:+$RUN_DIR/s$n}"
  if [[ -n $measured && -f $measured/sluice.yaml ]]; then
    cp "$measured/sluice.yaml" "$cfg"
    meta "$OUT" "${name}_config" "the generated config of scenario $n in this run"
    r=$(awk -F= '$1 == "rate" { print $2; exit }' "$measured/meta.env" 2>/dev/null)
    rate=${r:-$rate}
  else
    read -r -a ov <<<"$overrides"
    case "${ADMISSION:-}" in on|off) ov=("${ov[@]/#admission=*/}" "admission=$ADMISSION") ;; esac
    clean=(); for o in "${ov[@]}"; do [[ -n $o ]] && clean+=("$o"); done
    make_config "$cfg" "${clean[@]}"
    meta "$OUT" "${name}_config" "generated here with scenario $n's overrides (${clean[*]})"
  fi
  meta "$OUT" "${name}_scenario" "$n"
  meta "$OUT" "${name}_rate" "$rate"
  meta "$OUT" "${name}_devices" "$(awk '$1 == "devices:" { print $2; exit }' "$cfg")"
  for arr in poisson constant; do
    # shellcheck disable=SC2054  # the commas are inside --mix
    cmd=("$SLUICE_BIN" simulate --config "$cfg" --rate "$rate" --duration "$(( w + d ))s" --warmup "${w}s"
         --mix free=0.7,paid=0.25,enterprise=0.05 --arrivals "$arr" --seed "$SEED" --json)
    shown=("${cmd[@]}"); shown[3]="SCENARIO_${name}.yaml"
    meta "$OUT" "cmd_${name}_$arr" "$(cmd_text "${shown[@]}")"
    log "scenario 9 (simulated vs measured): $name, $rate req/s, $arr arrivals, $(( w + d )) s of virtual time"
    timeout 300 "${cmd[@]}" >"$OUT/$name-$arr.json" 2>"$OUT/$name-$arr.err" \
      || die "sluice simulate failed ($name, $arr): $(tail -n 3 "$OUT/$name-$arr.err")"
  done
done
meta "$OUT" rc 0
