#!/usr/bin/env bash
# Load test of `abridge serve` on loopback with wrk (Debian: apt-get install -y wrk). Not part of
# CI: it takes minutes and its numbers depend on the machine. Results go in docs/PERFORMANCE.md.
#
#   scripts/load-test.sh [CLIENTS] [SECONDS] [TOKENS]      (default 16 clients, 20 s, 500 tokens)
#
# Environment: ABRIDGE_BIN (default: build target/release/abridge), PORT (18080),
# METHOD (llmlingua), RATE (0.5), WORKERS (server default: one per core).
# The server is started here, loaded for SECONDS, then stopped; the run prints wrk's latency
# distribution, the server's peak and final RSS, and its /metrics counters.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-16}
SECONDS_=${2:-20}
TOKENS=${3:-500}
PORT=${PORT:-18080}
METHOD=${METHOD:-llmlingua}
RATE=${RATE:-0.5}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
if [[ -z "${ABRIDGE_BIN:-}" ]]; then
    cargo build --release --quiet -p abridge
    ABRIDGE_BIN=${CARGO_TARGET_DIR:-target}/release/abridge
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The body: the sample prose repeated to about TOKENS cl100k tokens (about 4.75 bytes a token).
python3 - "$TOKENS" "$METHOD" "$RATE" > "$work/body.json" <<'PY'
import json, sys
tokens, method, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
sample = open("examples/sample.txt").read()
text = ""
while len(text) < tokens * 4.75:
    text += sample + "\n"
text = text[: int(tokens * 4.75)].rsplit(" ", 1)[0]
print(json.dumps({"context": text, "method": method, "rate": rate}))
PY
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("$work/body.json"):read("*a")
LUA

workers=()
[[ -n "${WORKERS:-}" ]] && workers=(--workers "$WORKERS")
"$ABRIDGE_BIN" serve --host 127.0.0.1 --port "$PORT" "${workers[@]}" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
echo "server: $(curl -sf "http://127.0.0.1:$PORT/healthz")"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
echo "idle RSS: $(( $(rss_kib) / 1024 )) MiB"

# One request alone: the unloaded latency and the prompt's size.
single=$(curl -sf -w ' %{time_total}' -H 'content-type: application/json' \
    --data-binary "@$work/body.json" "http://127.0.0.1:$PORT/v1/compress")
echo "one request alone: ${single##* } s, $(echo "${single% *}" | jq -c '{origin_tokens, compressed_tokens, ratio, timings}')"

# RSS sampled every 0.5 s while wrk runs.
( peak=0; while kill -0 "$server_pid" 2>/dev/null; do
    r=$(rss_kib || echo 0); (( r > peak )) && peak=$r && echo "$peak" > "$work/peak"
    sleep 0.5
  done ) &
sampler=$!
wrk -t2 -c"$CLIENTS" -d"${SECONDS_}s" --timeout 300s --latency -s "$work/post.lua" \
    "http://127.0.0.1:$PORT/v1/compress"
kill "$sampler" 2>/dev/null || true
echo "peak RSS under load: $(( $(cat "$work/peak") / 1024 )) MiB; after: $(( $(rss_kib) / 1024 )) MiB"
echo "server counters:"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^abridge_(requests_total|compressions_total|tokens_|queue_depth|workers)'
