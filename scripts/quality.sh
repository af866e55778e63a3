#!/usr/bin/env bash
# Reproduces the tables of docs/QUALITY.md: every baseline and method on the test split of four
# suites, with the sample sizes used there, and the evaluator-LM metric on a small NQ sample.
# Fetches what is missing (models; datasets: the bigbench sdist is a 358 MB download; the
# evaluator: 456 MB), then writes one Markdown table and one JSON report per run into the
# directory given (default target/quality). About an hour on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/quality}"
mkdir -p "$out"
scripts/fetch-models.sh
scripts/fetch-datasets.py nq gsm8k xsum essays
run() {
    local name="$1"
    shift
    echo "== $name: abridge eval $*" >&2
    cargo run --quiet -p abridge -- eval "$@" --json "$out/$name.json" | tee "$out/$name.md"
}
run nq --suite nq --limit 40
run gsm8k --suite gsm8k --limit 20
run xsum --suite xsum --limit 15
run niah --suite niah --lengths 1000,2000 --limit 1
# abridge-fast against its teacher (issue 7).
run nq-fast --suite nq --limit 40 --methods none,head,tail,random,selective-context,fast,fast-question
run nq-fast-evaluator --suite nq --limit 12 --methods none,head,random,selective-context,fast,fast-question --evaluator "$(scripts/fetch-evaluator.py)"
run nq-evaluator --suite nq --limit 8 --rates 1/2 --evaluator "$(scripts/fetch-evaluator.py)"
scripts/plot-quality.py "$out/nq.json" -o "$out/nq.svg" --title "NQ test: answer kept vs rate"
scripts/plot-quality.py "$out/gsm8k.json" -o "$out/gsm8k.svg" --metric numbers_kept --title "GSM8K test: numbers kept vs rate"
