#!/usr/bin/env bash
# Runs every check and test of abridge on a fresh machine: installs the models the tests use,
# then formatting, lints and the whole test suite. One cargo profile (dev, with optimised
# dependencies) serves all of them, so nothing is built twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
scripts/fetch-datasets.py squad   # the real SQuAD paragraphs of `abridge eval --quick` (tests/quick.rs)
scripts/fetch-evaluator.py     # Qwen2.5-Coder-0.5B-Instruct, the rewriter of the rewrite tests (CLI and Python)
# Headless Chromium (and a font) for the web page test, crates/abridge-server/tests/browser.rs.
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
scripts/test-python.sh   # the Python package (crates/abridge-py) on the same build
