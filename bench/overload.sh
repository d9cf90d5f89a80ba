#!/usr/bin/env bash
# overload.sh: Sluice under 3x its peak capacity with the seed tier mix.
#
# Requirement (issue 4): "3x peak overload with the seed tier mix (70/25/5)
# for 60 s; report per-tier p50/p95/p99, success and shed rates, and peak
# memory. Target: enterprise 100 % success with p95 < 500 ms; paid p95 <
# 500 ms for what is admitted."
#
# What it does
#   1. Builds build/src/app/sluice (Release) if SLUICE_BIN is not given and
#      that file is missing.
#   2. Starts `sluice serve --port 0` on a copy of config/sluice.yaml set to
#      the seed baseline: DEVICES (4) sim devices at 34 ms + 0.5 ms per item
#      (a full batch of 32 in 50 ms), max_batch_size 32, admission on with
#      target_utilization TARGET_UTILIZATION (0.75), and every per-key rate
#      limit off (requests_per_minute / tokens_per_minute 0), so that what is
#      measured is admission, not rate limiting. Everything else (tier
#      budgets 400/800/1500 ms, depth thresholds, jitter) is the bundled
#      file's.
#   3. Peak capacity = DEVICES x 32 / 0.050 s x TARGET_UTILIZATION (4 devices:
#      1,920 req/s); offers MULTIPLIER (3) times that with `sluice bench`
#      (open loop: requests leave at their scheduled times whatever the
#      answers do; latency counts from the scheduled time) with the mix
#      free=70,paid=25,enterprise=5 for DURATION (60s).
#   4. While it runs, samples GET /internal/health and the sluice process's
#      VmRSS every SAMPLE_INTERVAL (0.5) s; afterwards reads VmHWM (peak
#      resident memory) from /proc/PID/status.
#   5. Prints a markdown report on stdout: per tier the offered rate, 200 /
#      503 / 429 / 504 / other counts, success and shed rates (shed = 503 +
#      429), p50/p95/p99/max of the 200s; the gateway's capacity, queue
#      depth and recommended devices over the run; peak memory; the generator's
#      health; and the verdict against the target.
#
# Usage
#   bench/overload.sh [--save] [--strict] [--duration 60s] [--bin PATH]
#
# Environment (flags win): SLUICE_BIN (default build/src/app/sluice), DURATION
# (60s), WARMUP (0s: the onset of the overload is measured too), MULTIPLIER
# (3), DEVICES (4), TARGET_UTILIZATION (0.75), CONNECTIONS (2048),
# BENCH_THREADS (1), SLUICE_IO_THREADS (2), SAMPLE_INTERVAL (0.5), STRICT (0),
# KEEP_TMP (0; 1 keeps the temp dir with config, logs and raw JSON).
# Needs curl and python3.
#
# Exit status: 0 done (whatever the verdict); 1 setup failure; 2 the run saw
# transport errors or unexpected statuses (report still printed); 3 with
# --strict (STRICT=1) when the target is missed; 130/143 interrupted.
# --save also writes the report to bench/results/overload-<date>.md.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

SLUICE_BIN=${SLUICE_BIN:-}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-0s}
MULTIPLIER=${MULTIPLIER:-3}
DEVICES=${DEVICES:-4}
TARGET_UTILIZATION=${TARGET_UTILIZATION:-0.75}
CONNECTIONS=${CONNECTIONS:-2048}
BENCH_THREADS=${BENCH_THREADS:-1}
SLUICE_IO_THREADS=${SLUICE_IO_THREADS:-2}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-0.5}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}
SAVE=0
MIX=free=70,paid=25,enterprise=5
BATCH=32
FIXED_US=34000
PER_ITEM_US=500
SERVICE_TOKEN=svc-demo-token
BASE_CONFIG="$REPO_ROOT/config/sluice.yaml"

# The bundled config without its embedding model (this bench measures the
# completions model alone).
without_embedding_model() {
  awk '/^  - name: sluice-sim-embed/ { skip = 1; next }
       skip && /^[^[:space:]#]/ { skip = 0 }
       !skip { print }' "$1"
}

usage() { sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --save) SAVE=1 ;;
    --strict) STRICT=1 ;;
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --bin) SLUICE_BIN=${2:?--bin needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done

log() { printf '[overload] %s\n' "$*" >&2; }
die() { printf '[overload] error: %s\n' "$*" >&2; exit 1; }

# Whole seconds in "20", "20s", "2m".
to_seconds() {
  case "$1" in
    *[!0-9sm]*|''|s|m) die "bad duration '$1' (use e.g. 20s, 2m)" ;;
    *s) echo $(( ${1%s} )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *) echo $(( $1 )) ;;
  esac
}
DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
(( DURATION_S >= 1 )) || die "DURATION must be at least 1s"
for v in DEVICES CONNECTIONS BENCH_THREADS SLUICE_IO_THREADS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for v in MULTIPLIER TARGET_UTILIZATION SAMPLE_INTERVAL; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number (got '${!v}')"
done
command -v python3 >/dev/null 2>&1 || die "python3 is needed"
command -v curl >/dev/null 2>&1 || die "curl is needed"

# ---------------------------------------------------------------- sluice binary
if [[ -z $SLUICE_BIN ]]; then
  SLUICE_BIN=build/src/app/sluice
  if [[ ! -x $SLUICE_BIN ]]; then
    log "$SLUICE_BIN missing: building it (Release)"
    timeout 3600 cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
    timeout 3600 ninja -C build sluice >&2
  fi
fi
[[ -x $SLUICE_BIN ]] || die "SLUICE_BIN '$SLUICE_BIN' is not an executable file"
SLUICE_BIN=$(cd "$(dirname "$SLUICE_BIN")" && pwd)/$(basename "$SLUICE_BIN")
timeout 10 "$SLUICE_BIN" bench --help >/dev/null 2>&1 \
  || die "'$SLUICE_BIN bench --help' failed: this binary has no load generator"

# ---------------------------------------------------------------- temp dir and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-overload.XXXXXX")
SLUICE_PID=""
SAMPLER_PID=""
BENCH_PID=""

# Stops one process this script started: TERM, up to 5 s, then KILL.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked through the traps below
cleanup() {
  local rc=$? f
  trap - EXIT INT TERM
  touch "$WORK/stop-sampler" 2>/dev/null || true
  stop_pid "$BENCH_PID"
  stop_pid "$SAMPLER_PID"
  stop_pid "$SLUICE_PID"
  if (( rc != 0 && rc != 2 && rc != 3 )); then
    for f in "$WORK"/sluice.err "$WORK"/bench.err; do
      if [[ -s $f ]]; then
        log "--- last lines of $(basename "$f")"
        tail -n 20 "$f" >&2 || true
      fi
    done
  fi
  if [[ $KEEP_TMP == 1 ]]; then log "kept temp dir $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- config
CONFIG="$WORK/sluice.yaml"
[[ -f $BASE_CONFIG ]] || die "$BASE_CONFIG not found"
sed -E \
  -e "s/^([[:space:]]*)port:[[:space:]]*[0-9]+/\1port: 0/" \
  -e "s/^([[:space:]]*)io_threads:.*/\1io_threads: $SLUICE_IO_THREADS/" \
  -e "s/^([[:space:]]*)enabled:.*/\1enabled: true/" \
  -e "s/^([[:space:]]*)target_utilization:.*/\1target_utilization: $TARGET_UTILIZATION/" \
  -e "s/^([[:space:]]*)requests_per_minute:.*/\1requests_per_minute: 0/" \
  -e "s/^([[:space:]]*)tokens_per_minute:.*/\1tokens_per_minute: 0/" \
  -e "s/^([[:space:]]*)max_batch_size:.*/\1max_batch_size: $BATCH/" \
  -e "s/^([[:space:]]*)devices:.*/\1devices: $DEVICES/" \
  -e "s/^([[:space:]]*)fixed_latency_us:.*/\1fixed_latency_us: $FIXED_US/" \
  -e "s/^([[:space:]]*)per_item_latency_us:.*/\1per_item_latency_us: $PER_ITEM_US/" \
  -e "s#^([[:space:]]*)path: sluice-requests.db#\1path: $WORK/requests.db#" \
  <(without_embedding_model "$BASE_CONFIG") >"$CONFIG"
for k in "enabled: true" "target_utilization: $TARGET_UTILIZATION" "max_batch_size: $BATCH" \
         "devices: $DEVICES" "fixed_latency_us: $FIXED_US" "per_item_latency_us: $PER_ITEM_US" \
         "requests_per_minute: 0" "tokens_per_minute: 0" "name: sluice-sim-small"; do
  grep -qE "^[[:space:]]*-?[[:space:]]*$k\$" "$CONFIG" \
    || die "could not set '$k' in the copy of $BASE_CONFIG (has its layout changed?)"
done
if grep -qE "^[[:space:]]*(requests|tokens)_per_minute:[[:space:]]*[1-9]" "$CONFIG"; then
  die "a rate limit is still on in the copy of $BASE_CONFIG"
fi

# Peak capacity and the offered rate (req/s).
read -r BATCH_S CAPACITY RATE < <(python3 -c "
b = ($FIXED_US + $BATCH * $PER_ITEM_US) / 1e6
cap = $DEVICES * $BATCH / b * $TARGET_UTILIZATION
print(f'{b:.3f} {cap:.0f} {cap * $MULTIPLIER:.0f}')")

# ---------------------------------------------------------------- sluice
pre=()
command -v stdbuf >/dev/null 2>&1 && pre=(stdbuf -oL -eL)
"${pre[@]}" "$SLUICE_BIN" serve --config "$CONFIG" --port 0 \
  </dev/null >"$WORK/sluice.out" 2>"$WORK/sluice.err" &
SLUICE_PID=$!
line=""
for (( i = 0; i < 200; i++ )); do  # ~20 s
  line=$(grep -h -m1 -oE 'sluice: listening on http://[^ ]+:[0-9]+' "$WORK/sluice.out" \
           2>/dev/null | head -n1 || true)
  [[ -n $line ]] && break
  kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice exited during start-up"
  sleep 0.1
done
[[ -n $line ]] || die "sluice did not print 'sluice: listening on http://...' within 20 s"
PORT=${line##*:}
URL="http://127.0.0.1:$PORT"
probe=$(curl -sS -m 5 -o "$WORK/probe.body" -w '%{http_code}' \
  -H 'Authorization: Bearer sk-enterprise-demo-0001' -H 'Content-Type: application/json' \
  --data '{"model":"sluice-sim-small","input":"probe"}' "$URL/v1/inference" 2>/dev/null) || probe=000
[[ $probe == 200 ]] || die "probe request answered $probe: $(head -c 300 "$WORK/probe.body" 2>/dev/null)"
log "sluice pid $SLUICE_PID on $URL: $DEVICES devices, capacity $CAPACITY req/s; offering $RATE req/s for ${DURATION_S}s"

# ---------------------------------------------------------------- health sampler
# One line per sample: unix time, VmRSS (kB), /internal/health JSON. Stops
# when the stop file appears (or is stopped by PID at exit).
sample() {
  local h rss
  while [[ ! -e $WORK/stop-sampler ]]; do
    h=$(curl -s -m 1 -H "Authorization: Bearer $SERVICE_TOKEN" "$URL/internal/health" \
          2>/dev/null | tr -d '\n' || true)
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SLUICE_PID/status" 2>/dev/null || true)
    printf '%s\t%s\t%s\n' "$(date +%s.%N)" "${rss:-0}" "${h:-null}" >>"$WORK/health.tsv"
    sleep "$SAMPLE_INTERVAL"
  done
}
sample &
SAMPLER_PID=$!

# ---------------------------------------------------------------- run
# utime + stime of a process (fields 14, 15 of /proc/PID/stat; comm may hold spaces).
proc_ticks() { local st rest; st=$(cat "/proc/$1/stat"); rest=${st##*) }; awk '{ print $12 + $13 }' <<<"$rest"; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
all_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
t0=$(proc_ticks "$SLUICE_PID")
a0=$(all_busy_ticks)
w0=$(date +%s.%N)
timeout $(( DURATION_S + WARMUP_S + 120 )) "$SLUICE_BIN" bench --url "$URL" --rate "$RATE" \
  --duration "${DURATION_S}s" --warmup "${WARMUP_S}s" --connections "$CONNECTIONS" \
  --threads "$BENCH_THREADS" --mix "$MIX" --json >"$WORK/bench.json" 2>"$WORK/bench.err" &
BENCH_PID=$!
bench_rc=0
wait "$BENCH_PID" || bench_rc=$?
BENCH_PID=""
(( bench_rc == 0 )) || die "sluice bench failed (exit $bench_rc): $(tail -n 3 "$WORK/bench.err")"
t1=$(proc_ticks "$SLUICE_PID")
a1=$(all_busy_ticks)
w1=$(date +%s.%N)
kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice died during the run"
VMHWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SLUICE_PID/status")
VMRSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SLUICE_PID/status")
touch "$WORK/stop-sampler"
stop_pid "$SAMPLER_PID"
SAMPLER_PID=""
SLUICE_CPU=$(awk -v t="$(( t1 - t0 ))" -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" \
  'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')
# Everything else that ran meanwhile: sluice bench and any other process.
OTHERS_CPU=$(awk -v t="$(( a1 - a0 - (t1 - t0) ))" -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" \
  'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')

# ---------------------------------------------------------------- report
COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] \
  && COMMIT="$COMMIT (working tree differs)"
export BENCH_JSON="$WORK/bench.json" HEALTH_TSV="$WORK/health.tsv" VMHWM VMRSS SLUICE_CPU OTHERS_CPU \
  CAPACITY RATE BATCH_S DEVICES TARGET_UTILIZATION MULTIPLIER DURATION_S WARMUP_S CONNECTIONS \
  BENCH_THREADS SLUICE_IO_THREADS COMMIT MIX SLUICE_BIN SAMPLE_INTERVAL
MACHINE="$(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
export MACHINE
REPORT="$WORK/report.md"
report_rc=0
python3 - >"$REPORT" <<'EOF' || report_rc=$?
import datetime, json, os, statistics, sys

e = os.environ
b = json.load(open(e["BENCH_JSON"]))
tiers = b["overall"]["tiers"]
order = [t for t in ("enterprise", "paid", "free") if t in tiers]

def ms(v):
    return "–" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"

def pct(n, d):
    return "–" if d == 0 else f"{100 * n / d:.1f} %"

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(f"## Overload: {e['MULTIPLIER']}x peak capacity, seed tier mix ({now})\n")
print(f"- machine: {e['MACHINE']}")
binary = e["SLUICE_BIN"]
if binary.startswith(os.getcwd() + "/"):
    binary = os.path.relpath(binary)
print(f"- sluice: `{binary}`, commit {e['COMMIT']}, "
      f"io_threads {e['SLUICE_IO_THREADS']}; {e['DEVICES']} sim devices at 34 ms + 0.5 ms/item "
      f"(32 items in {float(e['BATCH_S']) * 1000:.0f} ms, jitter as in config/sluice.yaml), "
      f"max_batch_size 32; admission on, target_utilization {e['TARGET_UTILIZATION']}; "
      "rate limits off; tier budgets and depth thresholds from config/sluice.yaml")
print(f"- peak capacity = {e['DEVICES']} devices x 32 / {e['BATCH_S']} s x "
      f"{e['TARGET_UTILIZATION']} = **{e['CAPACITY']} req/s**; offered {e['MULTIPLIER']}x = "
      f"**{e['RATE']} req/s** for {e['DURATION_S']} s (warm-up {e['WARMUP_S']} s, not counted)")
print(f"- load: `sluice bench`, open loop, constant arrivals, mix {e['MIX']}, "
      f"{e['CONNECTIONS']} connections, {e['BENCH_THREADS']} thread(s)\n")

print("| tier | offered req/s | requests | 200 | 503 | 429 | 504 | other | success | shed | p50 | p95 | p99 | max |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in order + ["all"]:
    t = b["overall"]["all"] if name == "all" else tiers[name]
    n, lat = t["scheduled"], t["latency_ms"]
    shed = t["status_503"] + t["status_429"]
    print(f"| {name} | {t['offered_rps']:.0f} | {n} | {t['ok']} | {t['status_503']} | "
          f"{t['status_429']} | {t['status_504']} | {t['other']} | {pct(t['ok'], n)} | "
          f"{pct(shed, n)} | {ms(lat['p50'])} | {ms(lat['p95'])} | {ms(lat['p99'])} | "
          f"{ms(lat['max'])} |")
print("\nsuccess = 200 / requests; shed = (503 + 429) / requests; latencies are of the 200s, "
      "from each request's scheduled send time (`sluice bench`).\n")

# Gateway state over the run, from the /internal/health samples.
samples = []
for line in open(e["HEALTH_TSV"]):
    parts = line.rstrip("\n").split("\t", 2)
    if len(parts) < 3:
        continue
    try:
        h = json.loads(parts[2])
    except ValueError:
        h = None
    samples.append((float(parts[0]), int(parts[1] or 0), h))
ok = [h for _, _, h in samples if isinstance(h, dict)]
if ok:
    depth = [h.get("queue_depth", 0) for h in ok]
    cap = [h.get("capacity_rps", 0) for h in ok]
    # recommended_devices: the gateway's scaling advice (devices for the
    # arrival rate at admission.target_utilization), per model.
    rec = [m.get("recommended_devices") for h in ok for m in h.get("models", [])
           if m.get("recommended_devices") is not None]
    per_dev = [m.get("throughput_per_device_rps", 0) for h in ok for m in h.get("models", [])]
    arrivals = [m.get("arrival_rps", 0) for h in ok for m in h.get("models", [])]
    print(f"Gateway over the run (`/internal/health`, {len(ok)} samples every "
          f"{os.environ.get('SAMPLE_INTERVAL', '0.5')} s, {len(samples) - len(ok)} failed):")
    print(f"- queue depth: max {max(depth)}, median {statistics.median(depth):.0f}")
    if rec:
        print(f"- recommended devices (`recommended_devices`): {min(rec)} .. {max(rec)}, "
              f"median {statistics.median(rec):.0f} (the fleet has {e['DEVICES']})")
    print(f"- capacity_rps: {min(cap):.0f} .. {max(cap):.0f}; throughput per device: "
          f"{min(per_dev, default=0):.0f} .. {max(per_dev, default=0):.0f} req/s; "
          f"arrival_rps max {max(arrivals, default=0):.0f}")
for m in b.get("gateway") or []:
    print(f"- batches ({m['model']}): {m['batches']:.0f}, mean size {m['mean_batch_size']:.1f}, "
          f"accelerator utilisation {100 * m['utilization_after']:.0f} % (last 10 s of the run)")
rss_max = max((r for _, r, _ in samples), default=0)
print(f"- **peak memory of sluice: VmHWM {int(e['VMHWM']) / 1024:.1f} MiB** "
      f"(VmRSS at the end {int(e['VMRSS']) / 1024:.1f} MiB, sampled max "
      f"{rss_max / 1024:.1f} MiB)")
print(f"- CPU over the run, in % of one CPU: sluice {e['SLUICE_CPU']} %, everything else "
      f"(sluice bench and any other process) {e['OTHERS_CPU']} %; nothing is pinned")
g = b["generator"]
print(f"- generator: {'FELL BEHIND its schedule' if g['fell_behind'] else 'kept to its schedule'} "
      f"({g['late']} requests late > {g['late_threshold_ms']} ms, schedule lag p99 "
      f"{ms(g['schedule_lag_ms']['p99'])}), {g['connection_waits']} waited for a connection, "
      f"{g['connect_failures']} connect failures, busiest load thread "
      f"{100 * g['max_thread_busy']:.0f} % of a core")
for w in b.get("warnings") or []:
    print(f"- warning (sluice bench): {w}")

# Verdict.
print("\nTarget: enterprise 100 % success with p95 < 500 ms; paid p95 < 500 ms for what is admitted.\n")
fails = []
ent, paid = tiers.get("enterprise"), tiers.get("paid")
if ent is None or ent["scheduled"] == 0:
    fails.append("no enterprise requests were sent")
else:
    p95 = ent["latency_ms"]["p95"]
    good = ent["ok"] == ent["scheduled"] and p95 is not None and p95 < 500
    print(f"- enterprise: {'meets' if good else 'MISSES'} ({ent['ok']}/{ent['scheduled']} "
          f"succeeded, p95 {ms(p95)})")
    if not good:
        fails.append("enterprise")
if paid is not None and paid["ok"] > 0:
    p95 = paid["latency_ms"]["p95"]
    good = p95 < 500
    print(f"- paid: {'meets' if good else 'MISSES'} (p95 {ms(p95)} over {paid['ok']} admitted "
          f"and served; {pct(paid['ok'], paid['scheduled'])} of paid requests succeeded)")
    if not good:
        fails.append("paid")
else:
    fails.append("no paid request was served")
print(f"\nverdict: {'MEETS the target' if not fails else 'MISSES the target (' + ', '.join(fails) + ')'}")
unexpected = b["overall"]["all"]["other"]
if unexpected:
    print(f"\n**{unexpected} requests got transport errors, timeouts or unexpected statuses.**")
sys.exit(3 if fails else (2 if unexpected else 0))
EOF
cat "$REPORT"
if (( SAVE )); then
  mkdir -p "$REPO_ROOT/bench/results"
  out="$REPO_ROOT/bench/results/overload-$(date -u +%Y-%m-%d-%H%M%S).md"
  cp "$REPORT" "$out"
  log "saved $out"
fi
case "$report_rc" in
  0) exit 0 ;;
  2) exit 2 ;;
  3) if (( STRICT )); then exit 3; else exit 0; fi ;;
  *) die "could not build the report (python exit $report_rc)" ;;
esac
