#!/usr/bin/env bash
# Builds the Python package `abridge` (crates/abridge-py) as a release wheel in target/wheels.
# Needs python3 (with venv and pip) and the Rust toolchain; maturin is installed with pip into a
# private virtual environment (target/python-build-venv). Install the wheel with
#   python3 -m pip install target/wheels/abridge-*.whl
# or skip this script and run `python3 -m pip install ./crates/abridge-py`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-build-venv
if [[ ! -x "$venv/bin/maturin" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
fi
"$venv/bin/maturin" build --release -m crates/abridge-py/Cargo.toml -o target/wheels "$@"
ls -1 target/wheels/abridge-*.whl
