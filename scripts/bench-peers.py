#!/usr/bin/env python3
"""Scoring throughput of abridge, PyTorch (transformers, f32) and llama.cpp side by side.

Not a test: a benchmark for docs/PERFORMANCE.md (issue 12). All three score the same token ids
(the sample text repeated) with the same GGUF weights and thread count, one after another in this
one run, so their ratio is meaningful even on a shared machine. "Scoring" is what compression
needs: one forward pass over every position and the log-probability of each actual next token.

    python3 scripts/bench-peers.py [--lengths 512,2048,8191] [--threads 2] [--repeat 2]

Needs (machine-local, not part of the project's setup): `pip install torch transformers gguf
llama-cpp-python` (llama-cpp-python builds llama.cpp from source, ~20 min on 2 cores). A peer
whose package is missing is reported as skipped.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def model_path():
    home = os.environ.get("ABRIDGE_HOME", str(Path.home() / ".cache/abridge/models"))
    return Path(home) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def ours(lengths, threads, repeat):
    """Runs `abridge bench --json`; returns {length: tokens/s} and the token ids it scored."""
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--", "bench", "--json", "--threads", str(threads),
         "--repeat", str(repeat), "--lengths", ",".join(map(str, lengths))],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {r["tokens"]: r["tokens_per_second"] for r in map(json.loads, out.splitlines())}


def sample_ids(tokenizer_encode, length):
    text = (ROOT / "examples/sample.txt").read_text()
    ids = tokenizer_encode(text)
    return (ids * (length // len(ids) + 1))[:length]


def fastest(run, repeat):
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def pytorch(lengths, threads, repeat):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    path = model_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, torch_dtype=torch.float32).eval()
    results = {}
    for length in lengths:
        # Document-start token first, as abridge scores it.
        ids = torch.tensor([[0] + sample_ids(lambda t: tokenizer.encode(t), length)])

        def run():
            with torch.no_grad():
                logits = model(ids).logits[0, :-1]
                torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])

        results[length] = length / fastest(run, repeat)
    return results


def llama_cpp(lengths, threads, repeat):
    from llama_cpp import Llama

    llm = Llama(str(model_path()), n_ctx=max(lengths) + 1, n_batch=512, n_threads=threads,
                n_threads_batch=threads, logits_all=True, verbose=False)
    results = {}
    for length in lengths:
        ids = [0] + sample_ids(lambda t: llm.tokenize(t.encode(), add_bos=False), length)

        def run():
            llm.reset()
            llm.eval(ids)

        results[length] = length / fastest(run, repeat)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="512,2048,8191")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    rows = {"abridge": ours(lengths, args.threads, args.repeat)}
    for name, peer in [("pytorch f32", pytorch), ("llama.cpp Q4_1", llama_cpp)]:
        try:
            rows[name] = peer(lengths, args.threads, args.repeat)
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
    print(f"tokens/s, {args.threads} thread(s), load {os.getloadavg()[0]:.2f}")
    print(f"{'':16}" + "".join(f"{n:>10}" for n in lengths))
    for name, results in rows.items():
        print(f"{name:16}" + "".join(f"{results[n]:>10.1f}" for n in lengths))
    for name, results in rows.items():
        if name != "abridge":
            ratios = " ".join(f"{rows['abridge'][n] / results[n]:.2f}x" for n in lengths)
            print(f"abridge / {name}: {ratios}")


if __name__ == "__main__":
    main()
