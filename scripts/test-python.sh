#!/usr/bin/env bash
# Builds the Python package `abridge` (crates/abridge-py), installs it into a fresh virtual
# environment and runs its pytest suite on the real default model.
#
# The wheel is built with cargo's dev profile (optimised dependencies, see Cargo.toml) in the
# workspace's target directory, so after `cargo test --workspace` only the bindings compile.
# The LangChain and LlamaIndex adapter tests run when langchain-core / llama-index-core install,
# the Ray Data example's when ray does (each is skipped otherwise). Set ABRIDGE_PY_VENV to reuse a virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
venv="$(realpath -m "${ABRIDGE_PY_VENV:-$target_dir/python-test-venv}")"
if [[ ! -x "$venv/bin/maturin" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" pytest
    "$venv/bin/python" -m pip install --quiet langchain-core llama-index-core ||
        echo "test-python: langchain-core / llama-index-core did not install; their adapter tests will be skipped" >&2
fi
# Ray Data, for the scale-out example's test (skipped if it does not install).
if ! "$venv/bin/python" -c "import ray.data" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet "ray[data]" ||
        echo "test-python: ray did not install; the Ray Data example's test will be skipped" >&2
fi
# The package fetches the default model itself on first use (as the CLI does).
wheels="$target_dir/python-test-wheels"
rm -rf "$wheels"
"$venv/bin/maturin" build --profile dev -m crates/abridge-py/Cargo.toml -o "$wheels"
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/abridge-*.whl
# The CLI, for the equality test (built by `cargo test --workspace`; skipped if absent).
export ABRIDGE_CLI="${ABRIDGE_CLI:-$target_dir/debug/abridge}"
cd crates/abridge-py
"$venv/bin/python" -m pytest -q tests "$@"
