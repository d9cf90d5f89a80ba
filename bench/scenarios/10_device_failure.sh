#!/usr/bin/env bash
# Scenario 10, half the devices failing mid-run under 0.7 x capacity: 1,792
# req/s (0.7 x 2,560; tier mix 70/25/5) on the bundled model's 4 sim devices
# (34 ms + 0.5 ms per item, max_batch_size 32, admission on), devices 0 and
# 1 lost from 10 s to 20 s, so the load is 1.4 x what is left (1,280 req/s).
#   Simulated: `sluice simulate --event 10s-20s:down:0-1` (the devices fail
#     every batch: breakers must find out) and `--event 10s-20s:disable:0-1`
#     (taken out of service), 40 s of Poisson arrivals, --json --series:
#     per tier and second, offered / 200 / refused / 504 / failed.
#   Live: `sluice serve` + `sluice bench` at the same rate, a ramp of 15
#     equal steps of FAILURE_STEP (2s: 30 s measured, 2 s warm-up before),
#     and POST /internal/models/sluice-sim-small/devices/{0,1}
#     {"enabled":false} (service token) after 5 steps, {"enabled":true}
#     after 10 (timed from the gateway's first answer, polled on /metrics,
#     less 35 ms: the generator's clock starts after it has connected).
# bench/report.py: per tier success in the seconds after the event, when the
# degraded properties (paid and enterprise 100 %, no 504 / 502, goodput >=
# 95 % of what is left) hold, and when every tier is back to 100 %.
#
# Usage: bench/scenarios/10_device_failure.sh OUT_DIR
# Environment: FAILURE_RATE (1792), FAILURE_STEP (2s), FAILURE_CONNECTIONS
# (1024), LIVE_FAILURE (1; 0 = simulation only), and those of lib.sh.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
RATE=${FAILURE_RATE:-1792}; STEP=${FAILURE_STEP:-2s}; CONNECTIONS=${FAILURE_CONNECTIONS:-1024}
LIVE=${LIVE_FAILURE:-1}
FWARMUP=2
STEPS=15; DOWN_STEP=5; UP_STEP=10
step_s=$(to_seconds "$STEP")
lib_install_trap; ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 10
meta "$OUT" rate "$RATE"
meta "$OUT" capacity 2560
meta "$OUT" lost_devices 2

make_config "$OUT/sluice.yaml" devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on
for ev in down disable; do
  # shellcheck disable=SC2054  # the commas are inside --mix
  cmd=("$SLUICE_BIN" simulate --config "$OUT/sluice.yaml" --rate "$RATE" --duration 40s
       --mix free=0.7,paid=0.25,enterprise=0.05 --arrivals poisson --event "10s-20s:$ev:0-1" --json --series)
  shown=("${cmd[@]}"); shown[3]=SCENARIO.yaml
  meta "$OUT" "cmd_sim_$ev" "$(cmd_text "${shown[@]}")"
  log "scenario 10 (device failure): simulate, devices 0-1 $ev from 10 s to 20 s, $RATE req/s"
  timeout 300 "${cmd[@]}" >"$OUT/sim-$ev.json" 2>"$OUT/sim-$ev.err" \
    || die "sluice simulate failed ($ev): $(tail -n 3 "$OUT/sim-$ev.err")"
done
meta "$OUT" sim_rc 0

if [[ $LIVE != 1 ]]; then
  log "scenario 10: live run skipped (LIVE_FAILURE=$LIVE)"
  exit 0
fi

# The sidecar: takes devices 0 and 1 out at DOWN_STEP steps, back at UP_STEP.
set_devices() {  # DIR true|false: POSTs for devices 0 and 1, one events.tsv line each
  local dir=$1 on=$2 i code
  for i in 0 1; do
    code=$(curl -sS -m 5 -o "$dir/device-$i-$on.json" -w '%{http_code}' -X POST \
             -H "Authorization: Bearer $SERVICE_TOKEN" -H 'Content-Type: application/json' \
             --data "{\"enabled\":$on}" \
             "http://127.0.0.1:$SLUICE_PORT/internal/models/sluice-sim-small/devices/$i" 2>/dev/null || echo 000)
    printf '%s\t%s\t%s\t%s\n' "$(awk -v t0="$T0" -v t="$(date +%s.%N)" -v w="$FWARMUP" 'BEGIN { printf "%.2f", t - t0 - w }')" \
      "$i" "$on" "$code" >>"$dir/events.tsv"
  done
}
answered() {  # requests the gateway has answered (sum of sluice_requests_total)
  curl -sS -m 2 -H "Authorization: Bearer $SERVICE_TOKEN" "http://127.0.0.1:$SLUICE_PORT/metrics" 2>/dev/null \
    | awk '/^sluice_requests_total\{/ { n += $NF } END { printf "%d", n }'
}
sleep_until() {  # T0-relative seconds
  local d
  d=$(awk -v t0="$T0" -v at="$1" -v now="$(date +%s.%N)" 'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')
  sleep "$d"
}
device_events() {
  local dir=$1 i
  # The generator's clock starts when its first request leaves, after it has
  # opened its connections: T0 is when the gateway has answered the first one
  # (polled every 20 ms; a lone request takes ~35 ms, so T0 is that late).
  T0=$(date +%s.%N)
  for (( i = 0; i < 1000; i++ )); do
    (( $(answered) > 0 )) && break
    sleep 0.02
  done
  T0=$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", t - 0.035 }')
  printf 'start\t%s\n' "$T0" >"$dir/sidecar.txt"
  sleep_until $(( FWARMUP + DOWN_STEP * step_s ))
  set_devices "$dir" false
  curl -sS -m 5 -H "Authorization: Bearer $SERVICE_TOKEN" \
    "http://127.0.0.1:$SLUICE_PORT/internal/health" >"$dir/health-during.json" 2>/dev/null || true
  sleep_until $(( FWARMUP + UP_STEP * step_s ))
  set_devices "$dir" true
}
rates=$(printf "$RATE,%.0s" $(seq 1 "$STEPS")); rates=${rates%,}
meta "$OUT" live_step_s "$step_s"
meta "$OUT" live_down_s $(( DOWN_STEP * step_s ))
meta "$OUT" live_up_s $(( UP_STEP * step_s ))
mkdir -p "$OUT/live"; : >"$OUT/live/meta.env"; : >"$OUT/live/events.tsv"
CFG_OVERRIDES=(devices=4 fixed_latency_us=34000 per_item_latency_us=500 max_batch_size=32 admission=on)
# shellcheck disable=SC2054  # the commas are inside --mix and --ramp values
BENCH_ARGS=(--ramp "$rates" --duration "$STEP" --warmup "${FWARMUP}s" --connections "$CONNECTIONS"
            --mix free=70,paid=25,enterprise=5)
BENCH_SIDECAR=device_events
log "scenario 10 (device failure): live, $RATE req/s for $(( STEPS * step_s )) s, devices 0-1 disabled at $(( DOWN_STEP * step_s )) s, enabled at $(( UP_STEP * step_s )) s"
run_load_scenario "$OUT/live" $(( FWARMUP + STEPS * step_s + 60 ))
