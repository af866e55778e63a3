#!/usr/bin/env bash
# Cramming capacity (docs/SOFT_PROMPTS.md): for k = 1, 2, 4, 8 soft vectors, the longest prefix
# of a text (16, 32, 64, 128, 256 tokens) that `abridge soft fit --objective cram` regenerates
# exactly within $STEPS steps. Also times optimisation steps at k = 8 over 256 tokens.
# Appends one JSON record per fit to $OUT. Usage: scripts/soft-capacity.sh [TEXT_FILE]
set -euo pipefail
BIN=${ABRIDGE:-target/debug/abridge}
TEXT=${1:-examples/sample.txt}
STEPS=${STEPS:-300}
THREADS=${THREADS:-2}
OUT=${OUT:-soft-capacity.jsonl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$BIN" score "$TEXT" --json >"$tmp/tokens.json"
prefix() {
    python3 -c "import json, sys; tokens = json.load(open(sys.argv[1]))['tokens']; \
sys.stdout.write(''.join(t['text'] for t in tokens[:int(sys.argv[2])]))" "$tmp/tokens.json" "$1" >"$tmp/prefix.txt"
}

# Step time: k = 8 before 256 text tokens (the last vector and 255 tokens predict 256).
prefix 256
"$BIN" --threads "$THREADS" soft fit "$tmp/prefix.txt" --tokens 8 --steps 5 --json \
    -o "$tmp/soft.safetensors" | sed 's/^{/{"run":"step-time",/' >>"$OUT"

for k in 1 2 4 8; do
    for n in 16 32 64 128 256; do
        prefix "$n"
        record=$("$BIN" --threads "$THREADS" soft fit "$tmp/prefix.txt" --tokens "$k" \
            --steps "$STEPS" --json -o "$tmp/soft.safetensors")
        echo "${record/#\{/\{\"run\":\"capacity\",}" >>"$OUT"
        grep -q '"exact":true' <<<"$record" || break
    done
done
