#!/usr/bin/env bash
# Runs every check and test of abridge on a fresh machine: installs the models the tests use,
# then formatting, lints and the whole test suite. One cargo profile (dev, with optimised
# dependencies) serves all of them, so nothing is built twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
