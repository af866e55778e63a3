#!/usr/bin/env python3
"""Scoring throughput of abridge, PyTorch (transformers, f32) and llama.cpp side by side.

Not a test: a benchmark for docs/PERFORMANCE.md (issues 12 and 22). All score the same token ids
(the sample text repeated) with the same GGUF weights and thread count. The runs alternate:
each round times abridge, then every peer, and each keeps its best round, so a machine that gets
busier part-way slows both sides alike. Each peer runs in its fastest setup: PyTorch under
`torch.inference_mode` with transformers' `sdpa` attention (`--attention` to compare others),
llama.cpp with `logits_all` and a full-length batch. "Scoring" is what compression needs: one
forward pass over every position and the log-probability of each actual next token.

    python3 scripts/bench-peers.py [--lengths 512,2048,8191] [--threads 2] [--rounds 3]

Needs (machine-local, not part of the project's setup): `pip install torch transformers==4.46.3
gguf accelerate` (transformers' GGUF loader needs accelerate), and optionally `llama-cpp-python`
(builds llama.cpp from source, ~20 min on 2 cores). A peer whose package is missing is reported
as skipped. Prints versions, the CPU and the load average before every round; check the load is
below 1 before trusting a ratio.
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


def ours(binary, lengths, threads):
    """One `abridge bench --json` round (its best of two passes per length): {length: tokens/s}."""
    out = subprocess.run(
        [str(binary), "bench", "--json", "--threads", str(threads), "--repeat", "2",
         "--lengths", ",".join(map(str, lengths))],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {r["tokens"]: r["tokens_per_second"] for r in map(json.loads, out.splitlines())}


def sample_ids(tokenizer_encode, length):
    text = (ROOT / "examples/sample.txt").read_text()
    ids = tokenizer_encode(text)
    return (ids * (length // len(ids) + 1))[:length]


class PyTorch:
    """SmolLM2 in transformers, f32, loaded once; `round` times each length once."""

    def __init__(self, threads, attention):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        path = model_path()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        self.model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, torch_dtype=torch.float32,
            attn_implementation=attention).eval()
        self.version = f"torch {torch.__version__}, transformers {transformers.__version__}, {attention}"

    def round(self, lengths):
        torch = self.torch
        results = {}
        for length in lengths:
            # Document-start token first, as abridge scores it.
            ids = torch.tensor([[0] + sample_ids(lambda t: self.tokenizer.encode(t), length)])
            started = time.perf_counter()
            with torch.inference_mode():
                logits = self.model(ids).logits[0, :-1]
                torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])
            results[length] = length / (time.perf_counter() - started)
        return results


class LlamaCpp:
    """llama.cpp through llama-cpp-python with every position's logits."""

    def __init__(self, threads, lengths):
        import llama_cpp
        from llama_cpp import Llama

        self.llm = Llama(str(model_path()), n_ctx=max(lengths) + 1, n_batch=max(lengths) + 1,
                         n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False)
        self.version = f"llama-cpp-python {llama_cpp.__version__}"

    def round(self, lengths):
        results = {}
        for length in lengths:
            ids = [0] + sample_ids(lambda t: self.llm.tokenize(t.encode(), add_bos=False), length)
            started = time.perf_counter()
            self.llm.reset()
            self.llm.eval(ids)
            results[length] = length / (time.perf_counter() - started)
        return results


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="512,2048,8191")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attention", default="sdpa", help="transformers' attn_implementation")
    parser.add_argument("--bin", default=str(ROOT / "target/debug/abridge"),
                        help="the abridge binary (build it first: cargo build)")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    peers = {}
    for name, make in [("pytorch f32", lambda: PyTorch(args.threads, args.attention)),
                       ("llama.cpp Q4_1", lambda: LlamaCpp(args.threads, lengths))]:
        try:
            peers[name] = make()
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
    best = {name: {} for name in ["abridge", *peers]}
    for number in range(args.rounds):
        print(f"round {number + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        timed = {"abridge": ours(args.bin, lengths, args.threads)}
        for name, peer in peers.items():
            timed[name] = peer.round(lengths)
        for name, results in timed.items():
            for n, speed in results.items():
                best[name][n] = max(best[name].get(n, 0.0), speed)
    print(f"{cpu_model()}; {args.threads} thread(s); best of {args.rounds} alternating rounds; "
          f"load {os.getloadavg()[0]:.2f} at the end")
    for name, peer in peers.items():
        print(f"{name}: {peer.version}")
    print(f"{'tokens/s':16}" + "".join(f"{n:>10}" for n in lengths))
    for name, results in best.items():
        print(f"{name:16}" + "".join(f"{results[n]:>10.1f}" for n in lengths))
    for name, results in best.items():
        if name != "abridge":
            ratios = " ".join(f"{best['abridge'][n] / results[n]:.2f}x" for n in lengths)
            print(f"abridge / {name}: {ratios}")


if __name__ == "__main__":
    main()
