#!/usr/bin/env python3
"""Tokenise dev-split text into fixed windows for ICAE / 500xCompressor training (issue #11).

Reads ~/.cache/abridge/datasets/*.jsonl (NQ and SQuAD passages, XSum articles, Paul Graham essays,
ShareGPT assistant turns), assigns every record to dev or test with the same rule as
`crates/abridge-eval/src/data.rs` (`Split::of(id)`: splitmix64(fnv1a(id)) % 2 == 0 -> dev), and
cuts each text into windows of `--window` (default 160 = up to 128 context + 32 continuation)
SmolLM2 tokens. Dev windows are the training set; test windows are held out for evaluation.
A passage that occurs under several ids is kept only when all its ids fall in one split.

Output: one .npz (uint16 token ids, few MB) with
  train [N, W] uint16, train_len [N] (valid tokens, >= --min-len; the rest is EOS padding),
  test  [M, W] uint16 (full windows only), test_src [M] (source names),
plus the tokenizer as tokenizer.json (for decoding on the device, `tokenizers` is there).

    python3 scripts/soft/prepare_icae_data.py --out /work/main/.device-icae/data
"""
import argparse
import collections
import json
import os

import numpy as np

MASK = (1 << 64) - 1


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def split_of(example_id: str) -> str:
    return "dev" if mix(fnv1a(example_id.encode())) % 2 == 0 else "test"


def records(dataset_dir):
    """Yield (source, id, text) for every usable text."""
    def rows(name):
        path = os.path.join(dataset_dir, name + ".jsonl")
        if not os.path.exists(path):
            return
        with open(path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)

    for name in ("nq", "squad"):
        ids_of = collections.defaultdict(list)
        for r in rows(name):
            ids_of[r["passage"]].append(r["id"])
        for passage, ids in ids_of.items():
            splits = {split_of(i) for i in ids}
            if len(splits) == 1:
                yield name, ids[0], passage
    for r in rows("xsum"):
        yield "xsum", r["id"], r["article"]
    for r in rows("essays"):
        yield "essays", r["id"], r["text"]
    for r in rows("sharegpt"):
        for t in r["turns"]:
            if t["role"] == "assistant":
                yield "sharegpt", r["id"], t["text"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=os.path.expanduser("~/.cache/abridge/datasets"))
    ap.add_argument("--gguf", default=os.path.expanduser(
        "~/.cache/abridge/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--window", type=int, default=160)
    ap.add_argument("--min-len", type=int, default=96, help="shortest training window kept")
    ap.add_argument("--max-windows-per-doc", type=int, default=8)
    ap.add_argument("--test-per-source", type=int, default=64)
    args = ap.parse_args()

    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(args.gguf),
                                        gguf_file=os.path.basename(args.gguf))
    eos = tok.eos_token_id
    os.makedirs(args.out, exist_ok=True)
    tok.backend_tokenizer.save(os.path.join(args.out, "tokenizer.json"))

    recs = list(records(args.datasets))
    texts = [r[2] for r in recs]
    enc = tok(texts, add_special_tokens=False)["input_ids"]
    W = args.window
    train, train_len, test, test_src = [], [], [], []
    test_count = collections.Counter()
    counts = collections.Counter()
    for (src, rid, _), ids in zip(recs, enc):
        split = split_of(rid)
        for w in range(args.max_windows_per_doc):
            chunk = ids[w * W:(w + 1) * W]
            if split == "dev" and len(chunk) >= args.min_len:
                row = np.full(W, eos, dtype=np.uint16)
                row[:len(chunk)] = chunk
                train.append(row)
                train_len.append(len(chunk))
                counts[("dev", src)] += 1
            elif split == "test" and len(chunk) == W and test_count[src] < args.test_per_source:
                test.append(np.array(chunk, dtype=np.uint16))
                test_src.append(src)
                test_count[src] += 1
                counts[("test", src)] += 1
                break  # one window per test document: more distinct texts
    train = np.stack(train)
    train_len = np.array(train_len, dtype=np.int16)
    test = np.stack(test)
    path = os.path.join(args.out, "icae_data.npz")
    np.savez_compressed(path, train=train, train_len=train_len, test=test,
                        test_src=np.array(test_src), eos=np.array(eos),
                        window=np.array(W))
    for key in sorted(counts):
        print(f"{key[0]:5} {key[1]:9} {counts[key]:6} windows")
    print(f"train {train.shape}, {int(train_len.sum())} tokens; test {test.shape}; "
          f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
