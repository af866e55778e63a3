#!/usr/bin/env python3
"""Scoring throughput of abridge, PyTorch (transformers, f32) and llama.cpp side by side; with
`--end-to-end`, whole compressions by abridge and Microsoft's llmlingua.

Not a test: a benchmark for docs/PERFORMANCE.md (issues 12 and 22). All score the same token ids
(the sample text repeated) with the same GGUF weights and thread count. The runs alternate:
each round times abridge, then every peer, and each keeps its best round, so a machine that gets
busier part-way slows both sides alike. Each peer runs in its fastest setup: PyTorch under
`torch.inference_mode` with transformers' `sdpa` attention (`--attention` to compare others),
llama.cpp with `logits_all` and a full-length batch. "Scoring" is what compression needs: one
forward pass over every position and the log-probability of each actual next token.

    python3 scripts/bench-peers.py [--lengths 512,2048,8191] [--threads 2] [--rounds 3]
    python3 scripts/bench-peers.py --end-to-end [--cases 20] [--threads 2] [--rounds 2]

`--end-to-end` compresses RAG prompts (a packaged SQuAD question with its paragraph among 9 others,
~1,100 cl100k tokens) to 0.33 with LongLLMLingua (the paper's setting) and LLMLingua, by
`abridge.PromptCompressor` and `llmlingua.PromptCompressor` (0.2.2; it fails on transformers
5.x), both loaded once in this process on the same SmolLM2 GGUF weights and warmed up, with the
same arguments, alternating case by case; `abridge.compress` (the default method, `auto`) runs
beside them. It prints each side's median seconds per case, how often the gold answer survives,
and the tokens llmlingua's model read (abridge's: `abridge bench --documents 10`). Needs the
abridge wheel in the same environment (`pip install target/python-test-wheels/abridge-*.whl`
after scripts/test-python.sh), `pip install llmlingua==0.2.2 --no-deps tiktoken nltk`, and
cl100k_base for tiktoken: with no internet the script points `TIKTOKEN_CACHE_DIR` at the copy
in the tiktoken-rs crate that cargo fetched.

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


def ours(binary, lengths, threads, weights):
    """One `abridge bench --json` round (its best of two passes per length): {length: tokens/s}."""
    out = subprocess.run(
        [str(binary), "bench", "--json", "--threads", str(threads), "--repeat", "2",
         "--weights", weights, "--lengths", ",".join(map(str, lengths))],
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
        from transformers import AutoTokenizer

        torch.set_num_threads(threads)
        path = model_path()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        self.model = load_gguf_model(path, attention)
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


def load_gguf_model(path, attention):
    """transformers' model of a GGUF file, f32, in eval mode. A tied-embedding model (SmolLM2) has
    no output tensor in its GGUF and transformers 4.46's GGUF config does not say the embeddings
    are tied, so it would leave `lm_head` randomly initialised (the timings are unaffected, the
    log-probabilities and so llmlingua's choices are garbage): tie it here as the model was
    trained."""
    import torch
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, torch_dtype=torch.float32,
        attn_implementation=attention, output_loading_info=True)
    if "lm_head.weight" in info["missing_keys"]:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


def rag_cases(count):
    """`count` (question, documents, answers): the question's passage among 9 others, at a
    position drawn per case (fixed seed), from the packaged SQuAD data (NQ left PyPI)."""
    import random

    home = Path(os.environ.get("ABRIDGE_DATA", str(Path.home() / ".cache/abridge/datasets")))
    rows = [json.loads(line) for line in (home / "squad.jsonl").open()]
    cases = []
    for i in range(count):
        others = [rows[(i * 7 + 13 * k + 1) % len(rows)]["passage"] for k in range(1, 10)]
        others.insert(random.Random(i).randrange(10), rows[i]["passage"])
        cases.append((rows[i]["question"], others, rows[i]["answers"]))
    return cases


def point_tiktoken_at_cargo_copy():
    """tiktoken downloads cl100k_base on first use; offline, reuse the file tiktoken-rs ships."""
    import hashlib

    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    url = b"https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache = Path("/tmp/abridge-bench-tiktoken")
    cached = cache / hashlib.sha1(url).hexdigest()
    if not cached.exists():
        registry = Path.home() / ".cargo/registry/src"
        copies = sorted(registry.glob("*/tiktoken-rs-*/assets/cl100k_base.tiktoken"))
        if not copies:
            return
        cache.mkdir(exist_ok=True)
        cached.write_bytes(copies[-1].read_bytes())
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


class Llmlingua:
    """Microsoft's llmlingua on the same GGUF weights, f32, sdpa, counting the tokens its model
    reads. 0.2.2's loader needs `config.architectures`, which transformers' GGUF config lacks,
    so the model is loaded here as its loader would (left padding, pad = eos); and decoding
    must not clean up tokenization spaces, or its prefix-length assertion fails on
    " 's" spacing."""

    def __init__(self, threads):
        import torch
        import transformers
        from llmlingua import PromptCompressor
        from transformers import AutoTokenizer

        torch.set_num_threads(threads)
        point_tiktoken_at_cargo_copy()
        path = model_path()

        def load_model(compressor, model_name, device_map, model_config):
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            tokenizer.padding_side = "left"
            tokenizer.pad_token_id = tokenizer.eos_token_id
            tokenizer.clean_up_tokenization_spaces = False
            compressor.tokenizer = tokenizer
            compressor.model = load_gguf_model(path, "sdpa")
            compressor.device = "cpu"
            compressor.context_idxs = []
            compressor.max_position_embeddings = compressor.model.config.max_position_embeddings

        PromptCompressor.load_model = load_model
        self.torch = torch
        self.compressor = PromptCompressor(str(path.parent), device_map="cpu")
        self.tokens_read = 0
        forward = self.compressor.model.forward

        def counting_forward(*args, **kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.tokens_read += ids.shape[0] * ids.shape[1]
            return forward(*args, **kwargs)

        self.compressor.model.forward = counting_forward
        import llmlingua
        self.version = (f"llmlingua {getattr(llmlingua, '__version__', '0.2.2')}, torch "
                        f"{torch.__version__}, transformers {transformers.__version__}, sdpa")

    def compress(self, documents, question, **kwargs):
        with self.torch.inference_mode():
            return self.compressor.compress_prompt(documents, question=question, **kwargs)


# LLMLingua's arguments for each method, as llmlingua's README gives them (rate 0.33).
END_TO_END_METHODS = {
    "longllmlingua": dict(rate=0.33, rank_method="longllmlingua",
                          condition_in_question="after_condition", reorder_context="sort",
                          dynamic_context_compression_ratio=0.3, condition_compare=True,
                          context_budget="+100"),
    "llmlingua": dict(rate=0.33),
}


def end_to_end(args):
    import statistics

    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    import abridge

    peer = Llmlingua(args.threads)
    cases = rag_cases(args.cases)
    sides = {}
    for weights in args.weights.split(","):
        ours = abridge.PromptCompressor(model_config={"weights": weights})
        sides[f"abridge {weights}"] = (
            lambda ours: lambda docs, q, kw: ours.compress_prompt(docs, question=q, **kw))(ours)
    sides["llmlingua"] = lambda docs, q, kw: peer.compress(docs, q, **kw)
    question, documents, _ = cases[0]
    for method, kwargs in END_TO_END_METHODS.items():  # warm-up: first calls allocate
        for side in sides.values():
            side(documents, question, kwargs)
    abridge.compress(documents, question=question, rate=0.33, spans=False)
    seconds = {}
    kept = {}
    read = {}
    for number in range(args.rounds):
        print(f"round {number + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        for method, kwargs in END_TO_END_METHODS.items():
            for index, (question, documents, answers) in enumerate(cases):
                for name, side in sides.items():
                    peer.tokens_read = 0
                    started = time.perf_counter()
                    result = side(documents, question, kwargs)
                    elapsed = time.perf_counter() - started
                    key = (method, name)
                    best = seconds.setdefault(key, [float("inf")] * len(cases))
                    best[index] = min(best[index], elapsed)
                    text = result["compressed_prompt"].lower()
                    kept.setdefault(key, {})[index] = any(a.lower() in text for a in answers)
                    if name == "llmlingua":
                        read.setdefault(method, {})[index] = peer.tokens_read
        for index, (question, documents, answers) in enumerate(cases):
            started = time.perf_counter()
            result = abridge.compress(documents, question=question, rate=0.33, spans=False)
            elapsed = time.perf_counter() - started
            best = seconds.setdefault(("auto", "abridge f32"), [float("inf")] * len(cases))
            best[index] = min(best[index], elapsed)
            text = result["text"].lower()
            kept.setdefault(("auto", "abridge f32"), {})[index] = any(a.lower() in text for a in answers)
    print(f"{cpu_model()}; {args.threads} thread(s); {len(cases)} SQuAD cases of 10 documents; "
          f"per case the best of {args.rounds} alternating rounds; load "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"llmlingua: {peer.version}; abridge {getattr(abridge, '__version__', '')}")
    print(f"{'method':15}{'side':16}{'median s':>10}{'answer kept':>13}{'peer LM tokens':>16}")
    for (method, name), times in seconds.items():
        tokens = ""
        if name == "llmlingua":
            tokens = f"{statistics.median(read[method].values()):.0f}"
        print(f"{method:15}{name:16}{statistics.median(times):>10.3f}"
              f"{sum(kept[(method, name)].values()):>9}/{len(cases):<3}{tokens:>16}")
    for method in END_TO_END_METHODS:
        for name in sides:
            if name != "llmlingua":
                ratio = (statistics.median(seconds[(method, "llmlingua")])
                         / statistics.median(seconds[(method, name)]))
                print(f"{method}: {name} is {ratio:.2f}x llmlingua's speed (median seconds per case)")


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
    parser.add_argument("--end-to-end", action="store_true",
                        help="time whole compressions against llmlingua instead of scoring")
    parser.add_argument("--cases", type=int, default=20, help="with --end-to-end")
    parser.add_argument("--weights", default="f32,int8",
                        help="abridge's weight formats to time (`abridge bench --weights`), comma-separated")
    args = parser.parse_args()
    if args.end_to_end:
        return end_to_end(args)
    lengths = [int(n) for n in args.lengths.split(",")]
    peers = {}
    for name, make in [("pytorch f32", lambda: PyTorch(args.threads, args.attention)),
                       ("llama.cpp Q4_1", lambda: LlamaCpp(args.threads, lengths))]:
        try:
            peers[name] = make()
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
    ours_names = {f"abridge {w}": w for w in args.weights.split(",")}
    best = {name: {} for name in [*ours_names, *peers]}
    for number in range(args.rounds):
        print(f"round {number + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        timed = {name: ours(args.bin, lengths, args.threads, w) for name, w in ours_names.items()}
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
    for ours_name in ours_names:
        for name, results in best.items():
            if name not in ours_names:
                ratios = " ".join(f"{best[ours_name][n] / results[n]:.2f}x" for n in lengths)
                print(f"{ours_name} / {name}: {ratios}")


if __name__ == "__main__":
    main()
