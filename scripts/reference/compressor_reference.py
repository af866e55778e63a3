#!/usr/bin/env python3
"""Reference outputs of a trained compressor (ICAE, 500xCompressor, GIST) on the tiny llama, for
abridge-soft's `compressor` tests (issue #11).

Uses `scripts/soft/train_icae.py` itself (imported by path: its `load_gguf`, `Base`, `Compressor`,
`compress` and `decode`), so the Rust runtime is checked against the trainer's conventions, not
against a copy of them. A random adapter is drawn with a fixed seed (LoRA B non-zero, unlike the
trainer's initialisation, so the adapters change the encoder), saved in the adapter format, and
these are written for one fixed input:

  - the ICAE slots (encoder final hidden states at the k memory positions);
  - the 500x prefix (per layer, K after rope and V at the memory positions);
  - logits of the ICAE decoder over [slots; AE; ids], of the 500x decoder over [AE; ids] after the
    prefix (positions k..), and of the GIST decoder: the 500x data flow with the LoRA'd model as
    the decoder (the trainer has no GIST path; this calls its `Base.forward` with `lora=`).

    python3 scripts/reference/compressor_reference.py
"""
import hashlib
import importlib.util
import json
import os

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = os.path.join(ROOT, "crates/abridge-models/tests/fixtures/tiny-llama.gguf")
OUT = os.path.join(ROOT, "crates/abridge-soft/tests/fixtures")
K, RANK, ALPHA, SEED = 3, 4, 8.0, 11
TEXT = [5, 17, 42, 99, 7, 250, 3, 11, 64, 128]
IDS = [9, 33, 2, 71, 150]


def trainer():
    spec = importlib.util.spec_from_file_location(
        "train_icae", os.path.join(ROOT, "scripts/soft/train_icae.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    t = trainer()
    W, cfg = t.load_gguf(GGUF)
    assert "output.weight" not in W, "the trainer's Base ties the LM head to the embeddings"
    base = t.Base(W, cfg, torch.device("cpu"), torch.float32)
    emb_std = base.emb.std().item()
    comp = t.Compressor(cfg, K, RANK, ALPHA, emb_std, SEED)
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for key in comp.b:
            comp.b[key].copy_(torch.randn(comp.b[key].shape, generator=g) * 0.3)
    with open(GGUF, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    meta = {"format": "abridge-soft-compressor/1", "method": "500x", "base_sha256": sha,
            "k": str(K), "rank": str(RANK), "alpha": str(ALPHA), "lora_scale": str(ALPHA / RANK),
            "lora_targets": "attn_q,attn_v", "rope": "interleaved (GGUF row order)",
            "seed": str(SEED), "note": "random adapter for tests (compressor_reference.py)"}
    os.makedirs(OUT, exist_ok=True)
    save_file(comp.tensors(), os.path.join(OUT, "tiny-compressor.safetensors"), metadata=meta)

    text = torch.tensor([TEXT])
    ids = torch.tensor([IDS])
    with torch.no_grad():
        slots = t.compress(base, comp, "icae", text)
        kv = t.compress(base, comp, "500x", text)
        icae = t.decode(base, comp, "icae", slots, comp.ae, ids)
        kv_prefix = t.decode(base, comp, "500x", kv, comp.ae, ids)
        x = torch.cat([comp.ae[None, None], base.embed(ids)], 1)
        h, _ = base.forward(x, lora=comp, prefix=kv, pos0=K)
        gist = base.logits(h)
    print("max |gist - 500x| logit", (gist - kv_prefix).abs().max().item())

    def rows(a):  # [B=1, n_kv, k, hd] -> [k, n_kv * hd], the runtime's cache rows
        return a[0].permute(1, 0, 2).reshape(K, -1).tolist()

    fixture = {
        "generated_by": "scripts/reference/compressor_reference.py",
        "adapter": "tiny-compressor.safetensors",
        "k": K, "text": TEXT, "ids": IDS,
        "icae_slots": slots[0].tolist(),
        "prefix_keys": [rows(k) for k, _ in kv],
        "prefix_values": [rows(v) for _, v in kv],
        "icae_logits": icae[0].tolist(),
        "kv_prefix_logits": kv_prefix[0].tolist(),
        "gist_logits": gist[0].tolist(),
    }
    with open(os.path.join(OUT, "compressor-reference.json"), "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
