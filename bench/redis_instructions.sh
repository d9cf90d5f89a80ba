#!/usr/bin/env bash
# redis_instructions.sh: Redis's own work per request for the scale-out
# scripts, counted in instructions rather than CPU time.
#
# `sluice bench-redis` reports Redis CPU µs per request from INFO cpu; on a
# shared 2-core machine that figure moves ±30 % from run to run, so a change
# of 10-15 % cannot be read from it. Here redis-server runs under valgrind's
# callgrind and the instructions it executes while `sluice bench-redis`
# enqueues, claims and completes REQUESTS requests are counted: the same
# workload gives the same count to within a fraction of a percent, so two
# binaries (two versions of the scripts) can be compared in one run.
#
# Usage: bench/redis_instructions.sh [SLUICE_BIN ...]   (default: build/src/app/sluice)
# Environment: BATCHES (16,64: enqueue batch sizes), REQUESTS (12800),
#   KEYS (1000: API keys the requests spread over; 0 = no rate limit),
#   CLAIM_BATCH (32).
# Prints one Markdown row per binary and batch size. Needs valgrind (Debian
# package; installed here if missing) and redis-server. Loopback only; stops
# the redis-server it started (by pid) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES=${BATCHES:-16,64}
REQUESTS=${REQUESTS:-12800}
KEYS=${KEYS:-1000}
CLAIM_BATCH=${CLAIM_BATCH:-32}
bins=("$@")
((${#bins[@]})) || bins=(build/src/app/sluice)
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "no binary $b" >&2; exit 1; }; done
if ! command -v callgrind_control >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-upgrade valgrind >&2
fi

dir=$(mktemp -d)
vg_pid=""
cleanup() {
  if [ -n "$vg_pid" ] && kill -0 "$vg_pid" 2>/dev/null; then
    kill "$vg_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$vg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$vg_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# Redis cannot bind port 0 and say which port it got: try random loopback
# ports until one starts (bounded).
port=""
for _ in $(seq 10); do
  p=$((20000 + RANDOM % 40000))
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
    redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no \
    >"$dir/redis.log" 2>&1 &
  vg_pid=$!
  for _ in $(seq 300); do  # up to 30 s: redis starts slowly under valgrind
    if redis-cli -p "$p" ping >/dev/null 2>&1; then port=$p; break; fi
    kill -0 "$vg_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill "$vg_pid" 2>/dev/null || true
  wait "$vg_pid" 2>/dev/null || true
  vg_pid=""
done
[ -n "$port" ] || { echo "redis-server did not start under valgrind" >&2; exit 1; }

# Instructions Redis executed since the last zeroing (one dump, summed).
count() {
  rm -f "$dir"/cg.*.[0-9]*
  callgrind_control -d "$vg_pid" >/dev/null 2>&1
  awk '/^(summary|totals):/ { print $2; exit }' "$dir"/cg."$vg_pid".[0-9]*
}

echo "| binary | enqueue batch | claim batch | requests | keys | Redis instructions per request |"
echo "|---|---:|---:|---:|---:|---:|"
IFS=, read -r -a sizes <<<"$BATCHES"
for bin in "${bins[@]}"; do
  for size in "${sizes[@]}"; do
    callgrind_control -z "$vg_pid" >/dev/null 2>&1
    "$bin" bench-redis --port "$port" --batches "$size" --requests "$REQUESTS" --keys "$KEYS" \
      --claim-batch "$CLAIM_BATCH" >"$dir/bench.txt"
    n=$(count)
    awk -v bin="$bin" -v s="$size" -v c="$CLAIM_BATCH" -v r="$REQUESTS" -v k="$KEYS" -v n="$n" \
      'BEGIN { printf "| %s | %s | %s | %s | %s | %.0f |\n", bin, s, c, r, k, n / r }'
  done
done
