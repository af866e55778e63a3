#!/usr/bin/env python3
"""Optional: compare tokenizer_ids.json (llama.cpp ids) with a HuggingFace `tokenizers` BPE
built from the same GGUF metadata (pip install tokenizers; no torch needed).

  python3 compare_hf_tokenizers.py MODEL.gguf crates/abridge-models/tests/fixtures/tokenizer_ids.json

Construction (the "smollm" pre-tokenizer): Digits(individual_digits) then ByteLevel with the
GPT-2 regex, ByteLevel decoder, control tokens (token_type 3) added as special tokens.
This mirrors the Rust construction, so it is a second opinion, not the ground truth.
"""
import json
import sys

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers


def build(path):
    r = gguf.GGUFReader(path)
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ")) for m in r.fields["tokenizer.ggml.merges"].contents()]
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(toks, types) if ty == 3])
    return tk


if __name__ == "__main__":
    tk = build(sys.argv[1])
    cases = json.load(open(sys.argv[2], encoding="utf-8"))["cases"]
    bad = 0
    for c in cases:
        ids = tk.encode(c["text"]).ids
        if ids != c["ids"]:
            bad += 1
            print("DIFF", repr(c["text"]), "\n  llama.cpp", c["ids"], "\n  tokenizers", ids)
    print(f"{len(cases) - bad}/{len(cases)} identical")
