#!/usr/bin/env bash
# openai.sh: issue 14's measures of the OpenAI-compatible surface.
#
# 1. Embeddings. `sluice serve` in front of a `sluice model-server` that
#    speaks OpenAI /v1/embeddings ($EMBED_DEVICES devices, 8 ms + 0.1 ms per
#    text), offered $RATE req/s of single-text POST /v1/embeddings for
#    $DURATION, with the model's max_batch_size 32 and then 1: backend calls
#    per answered request (the model's batches over its batched requests,
#    from /metrics), throughput (200s a second), p50/p99.
# 2. Streamed chat. A `sluice model-server` streaming /v1/chat/completions at
#    $TOKENS_PER_S words a second, offered $CHAT_RATE streamed chats a second,
#    straight and then through `sluice serve` (`openai_api: chat`): the time
#    to the first token (the response header, which carries it) p50/p99 of
#    each, and what Sluice adds.
#
# Usage: bench/openai.sh
# Environment: RATE (1000), DURATION (15s), WARMUP (2s), EMBED_DEVICES (2),
#   CHAT_RATE (100), TOKENS_PER_S (50), CONNECTIONS (256), and those of
#   bench/lib.sh (SLUICE_BIN, SERVER_CPU, CLIENT_CPU). Loopback only; stops
#   what it started by pid.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO_ROOT/bench/lib.sh"
RATE=${RATE:-1000}; DURATION=${DURATION:-15s}; WARMUP=${WARMUP:-2s}; EMBED_DEVICES=${EMBED_DEVICES:-2}
CHAT_RATE=${CHAT_RATE:-100}; TOKENS_PER_S=${TOKENS_PER_S:-50}; CONNECTIONS=${CONNECTIONS:-256}
lib_install_trap; ensure_tools; ensure_sluice
OUT=$(mktemp -d /tmp/sluice-openai-bench-XXXXXX)
bound=$(( $(to_seconds "$DURATION") + $(to_seconds "$WARMUP") + 60 ))
MS_PID=""; MS_PORT=""
stop_model_server() { if [[ -n $MS_PID ]]; then stop_pid "$MS_PID"; fi; MS_PID=""; }
openai_cleanup() { local rc=$?; stop_model_server; (exit "$rc"); lib_cleanup; }
trap openai_cleanup EXIT

# start_model_server DIR ARGS...: on CPU $SERVER_CPU beside sluice; sets MS_PID, MS_PORT.
start_model_server() {
  local dir=$1 i line=""; shift
  taskset -c "$SERVER_CPU" "$SLUICE_BIN" model-server --port 0 "$@" </dev/null \
    >"$dir/model-server.out" 2>"$dir/model-server.err" &
  MS_PID=$!
  for (( i = 0; i < 100; i++ )); do
    line=$(grep -m1 -oE 'listening on http://[^ ]+:[0-9]+' "$dir/model-server.out" 2>/dev/null || true)
    [[ -n $line ]] && break
    kill -0 "$MS_PID" 2>/dev/null || die "model-server exited during start-up"
    sleep 0.1
  done
  [[ -n $line ]] || die "model-server did not start within 10 s"
  MS_PORT=${line##*:}
}

# A copy of the bundled config (rate limits off, port 0) whose models are
# the one given on stdin.
config_with_model() {  # OUT
  make_config "$1.base"
  awk -v models="$1.models" '
    /^models:/ { print; while ((getline l < models) > 0) print l; skip = 1; next }
    skip && /^[^[:space:]#]/ { skip = 0 }
    !skip { print }' "$1.base" >"$1"
}
jq_num() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval('d' + sys.argv[1]))" "$2"; }

echo "## OpenAI-compatible surface (\`bench/openai.sh\`, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
echo "- commit $(git -C "$REPO_ROOT" rev-parse --short HEAD); servers (sluice and model-server) on CPU $SERVER_CPU, generator on CPU $CLIENT_CPU"
echo
echo "### Embeddings: $RATE req/s of one text each for $DURATION (after $WARMUP), model-server with $EMBED_DEVICES devices (8 ms + 0.1 ms per text)"
echo
echo "| max_batch_size | backend calls per request | answered req/s | success | p50 ms | p99 ms |"
echo "|---:|---:|---:|---:|---:|---:|"
for mbs in 32 1; do
  dir="$OUT/embed-$mbs"; mkdir -p "$dir"
  start_model_server "$dir" --model bench-embed --devices "$EMBED_DEVICES" \
    --fixed-latency-us 8000 --per-item-latency-us 100 --embedding-dims 256
  cat >"$dir/sluice.yaml.models" <<YAML
  - name: bench-embed
    max_batch_size: $mbs
    max_batch_delay_us: 2000
    queue_capacity: 10000
    backend:
      kind: openai
      openai_api: embeddings
      endpoints: ["http://127.0.0.1:$MS_PORT"]
      connections_per_endpoint: $EMBED_DEVICES
YAML
  config_with_model "$dir/sluice.yaml"
  start_sluice "$dir/sluice.yaml" "$dir"
  run_bench "$dir" run "$bound" --api openai-embeddings --model bench-embed --mix enterprise=1 \
    --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS" \
    --input-bytes 64-256 || true
  stop_sluice; stop_model_server
  j="$dir/run.json"
  batches=$(jq_num "$j" "['gateway'][0]['batches']")
  batched=$(jq_num "$j" "['gateway'][0]['batched_requests']")
  calls=$(awk -v b="$batches" -v r="$batched" 'BEGIN { printf (r > 0 ? "%.3f" : "n/a"), (r > 0 ? b / r : 0) }')
  printf '| %s | %s | %.0f | %.3f | %s | %s |\n' "$mbs" "$calls" \
    "$(jq_num "$j" "['overall']['all']['achieved_rps']")" \
    "$(jq_num "$j" "['overall']['all']['success_ratio']")" \
    "$(jq_num "$j" "['overall']['all']['latency_ms']['p50']")" \
    "$(jq_num "$j" "['overall']['all']['latency_ms']['p99']")"
done
echo
echo "### Streamed chat: $CHAT_RATE req/s for $DURATION, model-server streaming $TOKENS_PER_S words/s (max_tokens 32)"
echo
echo "| path | answered req/s | time to first token p50 ms | p99 ms | whole answer p50 ms |"
echo "|---|---:|---:|---:|---:|"
dir="$OUT/chat"; mkdir -p "$dir"
start_model_server "$dir" --model bench-chat --devices 64 --fixed-latency-us 20000 \
  --per-item-latency-us 0 --stream-tokens-per-second "$TOKENS_PER_S"
cat >"$dir/sluice.yaml.models" <<YAML
  - name: bench-chat
    max_batch_size: 1
    max_batch_delay_us: 0
    queue_capacity: 10000
    backend:
      kind: openai
      openai_api: chat
      endpoints: ["http://127.0.0.1:$MS_PORT"]
      connections_per_endpoint: 128
      request_timeout_ms: 5000
YAML
config_with_model "$dir/sluice.yaml"
chat_args=(--api openai-chat --model bench-chat --mix enterprise=1 --rate "$CHAT_RATE"
           --duration "$DURATION" --warmup "$WARMUP" --connections 256 --max-tokens 32
           --input-bytes 32-64)
# Straight to the model server (it takes any key): the same load, no gateway
# (and no /metrics to scrape).
timeout -k 5 "$bound" taskset -c "$CLIENT_CPU" "$SLUICE_BIN" bench --url "http://127.0.0.1:$MS_PORT" \
  "${chat_args[@]}" --service-token "" --json >"$dir/direct.json" 2>"$dir/direct.err" || log "the direct run failed: $(tail -n 3 "$dir/direct.err")" 
start_sluice "$dir/sluice.yaml" "$dir"
run_bench "$dir" sluice "$bound" "${chat_args[@]}" || true
stop_sluice; stop_model_server
for tag in direct sluice; do
  j="$dir/$tag.json"
  printf '| %s | %.0f | %s | %s | %s |\n' "$([[ $tag == direct ]] && echo "straight to model-server" || echo "through Sluice")" \
    "$(jq_num "$j" "['overall']['all']['achieved_rps']")" \
    "$(jq_num "$j" "['first_byte_ms']['p50']")" "$(jq_num "$j" "['first_byte_ms']['p99']")" \
    "$(jq_num "$j" "['overall']['all']['latency_ms']['p50']")"
done
added50=$(awk -v a="$(jq_num "$dir/sluice.json" "['first_byte_ms']['p50']")" -v b="$(jq_num "$dir/direct.json" "['first_byte_ms']['p50']")" 'BEGIN { printf "%.2f", a - b }')
added99=$(awk -v a="$(jq_num "$dir/sluice.json" "['first_byte_ms']['p99']")" -v b="$(jq_num "$dir/direct.json" "['first_byte_ms']['p99']")" 'BEGIN { printf "%.2f", a - b }')
echo
echo "Sluice's added time to first token: p50 $added50 ms, p99 $added99 ms."
echo
echo "Raw results: $OUT"
