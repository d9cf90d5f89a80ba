#!/usr/bin/env bash
# Scenario 3, gateway efficiency: runs bench/gateway_vs_nginx.sh (Sluice on a
# zero-latency sim, max_batch_size 64, vs nginx returning a constant; same
# machine, same run; wrk; server on CPU 0, wrk on CPU 1) and keeps its
# markdown report (OUT_DIR/report.md) and exit status for bench/report.py.
#
# Usage: bench/scenarios/3_gateway_efficiency.sh OUT_DIR
# Environment: NGINX_ROUNDS (3), NGINX_DURATION (10s), NGINX_WARMUP (3s),
# passed on as ROUNDS, DURATION, WARMUP; SLUICE_BIN, SERVER_CPU, CLIENT_CPU,
# SLUICE_IO_THREADS, IDLE_WAIT are passed on as they are.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
OUT=${1:?usage: $0 OUT_DIR}
NGINX_ROUNDS=${NGINX_ROUNDS:-3}; NGINX_DURATION=${NGINX_DURATION:-10s}; NGINX_WARMUP=${NGINX_WARMUP:-3s}
ensure_tools; ensure_sluice
mkdir -p "$OUT"; : >"$OUT/meta.env"
meta "$OUT" scenario 3
cmd=(env ROUNDS="$NGINX_ROUNDS" DURATION="$NGINX_DURATION" WARMUP="$NGINX_WARMUP"
     SLUICE_BIN="$SLUICE_BIN" SLUICE_IO_THREADS="$SLUICE_IO_THREADS" SERVER_CPU="$SERVER_CPU"
     CLIENT_CPU="$CLIENT_CPU" IDLE_WAIT="$IDLE_WAIT" "$REPO_ROOT/bench/gateway_vs_nginx.sh")
meta "$OUT" cmd "$(cmd_text "${cmd[@]}")"
log "scenario 3 (gateway efficiency): bench/gateway_vs_nginx.sh, $NGINX_ROUNDS round(s) x $NGINX_DURATION"
# Bounded: warm-ups, rounds, start-up; the script stops its own servers by PID.
bound=$(( 2 * $(to_seconds "$NGINX_WARMUP") + 2 * NGINX_ROUNDS * ($(to_seconds "$NGINX_DURATION") + 2 * ${IDLE_WAIT:-0}) + 180 ))
CHILD=""
trap '[[ -n $CHILD ]] && stop_pid "$CHILD" 20; exit 130' INT
trap '[[ -n $CHILD ]] && stop_pid "$CHILD" 20; exit 143' TERM
rc=0
timeout -k 10 "$bound" "${cmd[@]}" >"$OUT/report.md" 2>"$OUT/log.txt" &
CHILD=$!
wait "$CHILD" || rc=$?
CHILD=""
meta "$OUT" rc "$rc"
tail -n 3 "$OUT/report.md" >&2 || true
# 0 done, 2 errors seen (the report says so); other statuses: no usable report.
if (( rc != 0 && rc != 2 )); then
  log "bench/gateway_vs_nginx.sh exited with status $rc; its log:"
  tail -n 20 "$OUT/log.txt" >&2 || true
  exit "$rc"
fi
exit 0
