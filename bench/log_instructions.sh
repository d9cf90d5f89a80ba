#!/usr/bin/env bash
# log_instructions.sh: what the durable request log costs per request, counted
# in instructions rather than in requests/s.
#
# bench/gateway_vs_nginx.sh reports requests/s on one pinned core; on this
# shared 2-core machine the same binary moves ±20 % between runs, so a change
# of a few percent in the log cannot be read from it. Here `sluice serve`
# (the same zero-latency configuration as gateway_vs_nginx.sh) runs under
# valgrind's callgrind while wrk sends DURATION of keep-alive requests, once
# with the request log in memory and once with the bundled SQLite log, and
# the user-space instructions of the whole process (every thread: I/O,
# dispatch, the log writer and SQLite) are divided by the requests answered
# in the window. The same binary and load give the same count to within about
# a percent. Kernel work (sockets, the WAL file's writes) is not counted.
#
# Usage: bench/log_instructions.sh [SLUICE_BIN ...]   (default: build/src/app/sluice)
# Environment: DURATION (20s of load per run), CONNECTIONS (16), LOGS
#   (memory,sqlite: request_log.backend values to run), KEEP (1 keeps the
#   callgrind files for callgrind_annotate; their folder is printed),
#   LOG_OPTIONS (request_log settings added to the config, "key: value"
#   pairs separated by ";", e.g. "flush_batch: 4000").
# Prints one Markdown row per binary and log: instructions per request, and
# for sqlite the difference from memory (the log's own cost). Needs valgrind
# and wrk (Debian packages; installed here if missing). Loopback only; stops
# what it started by pid on exit.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
LOGS=${LOGS:-memory,sqlite}
bins=("$@")
((${#bins[@]})) || bins=(build/src/app/sluice)
for b in "${bins[@]}"; do [ -x "$b" ] || die "no binary $b"; done
missing=()
command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-upgrade "${missing[@]}" >&2
fi

dir=$(mktemp -d)
vg_pid=""
stop_vg() {
  if [ -n "$vg_pid" ] && kill -0 "$vg_pid" 2>/dev/null; then
    kill "$vg_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$vg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$vg_pid" 2>/dev/null || true
  fi
  wait "$vg_pid" 2>/dev/null || true
  vg_pid=""
}
if [ "${KEEP:-0}" = 1 ]; then
  trap 'stop_vg; echo "callgrind files kept in $dir" >&2' EXIT
else
  trap 'stop_vg; rm -rf "$dir"' EXIT
fi

echo "| binary | request log | requests in the window | instructions per request | log's own |"
echo "|---|---|---:|---:|---:|"
IFS=, read -r -a logs <<<"$LOGS"
for bin in "${bins[@]}"; do
  base=""
  for log_backend in "${logs[@]}"; do
    run="$dir/run-$(basename "$bin")-$log_backend"
    mkdir -p "$run"
    make_config "$run/sluice.yaml" devices=1 fixed_latency_us=0 per_item_latency_us=0 jitter=0 \
      max_batch_size=64 max_batch_delay_us=0 queue_capacity=100000
    sed -i -E "s/^([[:space:]]*)backend: sqlite/\1backend: $log_backend/" "$run/sluice.yaml"
    grep -qE "^[[:space:]]*backend: $log_backend" "$run/sluice.yaml" \
      || die "could not set request_log.backend: $log_backend"
    if [ -n "${LOG_OPTIONS:-}" ]; then  # "k: v;k: v" added to request_log
      sed -i -E "s/^([[:space:]]*)backend: $log_backend\$/&\n\1${LOG_OPTIONS//;/\\n\\1}/" "$run/sluice.yaml"
    fi
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$run/cg.%p" \
      "$bin" serve --config "$run/sluice.yaml" --port 0 >"$run/out" 2>&1 &
    vg_pid=$!
    port=""
    for _ in $(seq 600); do  # up to 60 s: start-up is slow under valgrind
      port=$(grep -m1 -oE 'sluice: listening on http://[^ ]+:[0-9]+' "$run/out" | sed 's/.*://' || true)
      [ -n "$port" ] && break
      kill -0 "$vg_pid" 2>/dev/null || { cat "$run/out" >&2; die "sluice exited under valgrind"; }
      sleep 0.1
    done
    [ -n "$port" ] || die "sluice did not start under valgrind within 60 s"
    callgrind_control -i on "$vg_pid" >/dev/null 2>&1
    timeout 120 wrk -t 1 -c "$CONNECTIONS" -d 3s -s bench/wrk_inference.lua \
      "http://127.0.0.1:$port/v1/inference" >"$run/warmup.txt"
    callgrind_control -z "$vg_pid" >/dev/null 2>&1
    timeout 300 wrk -t 1 -c "$CONNECTIONS" -d "$DURATION" -s bench/wrk_inference.lua \
      "http://127.0.0.1:$port/v1/inference" >"$run/wrk.txt"
    rm -f "$run"/cg.*.[0-9]*
    callgrind_control -d "$vg_pid" >/dev/null 2>&1
    # Each dump states its count twice (a summary: and a totals: line); sum one.
    ir=$(cat "$run"/cg."$vg_pid".[0-9]* | awk '/^totals:/ { s += $2 } END { print s + 0 }')
    line=$(grep -m1 '^WRKSTAT ' "$run/wrk.txt") || die "no WRKSTAT line from wrk"
    requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    non200=$(sed -E 's/.*non200=([0-9]+).*/\1/' <<<"$line")
    [ "$non200" -eq 0 ] || die "$non200 answers other than 200 ($log_backend)"
    stop_vg
    per=$(awk -v i="$ir" -v n="$requests" 'BEGIN { printf "%.0f", i / n }')
    own=""
    if [ -n "$base" ]; then own=$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%+.0f", a - b }'); fi
    [ "$log_backend" = memory ] && base=$per
    echo "| $bin | $log_backend | $requests | $per | $own |"
  done
done
