#!/usr/bin/env python3
"""Cross-check a log-prob fixture against llama.cpp (llama-cpp-python), same start-token convention.

  python3 check_llamacpp.py MODEL.gguf FIXTURE.json

FIXTURE.json is smollm2_logprobs.json ("texts") or tiny-<arch>.json ("sequences"); every entry
needs "ids" and "logprobs".  llama.cpp runs 1 thread, f32 KV cache, all logits; its activations
are quantised for quantised weights, so expect ~0.05 nats mean |delta| there, ~1e-5 for F32 files.
"""
import json
import sys

import numpy as np
import llama_cpp


def main(model_path, fixture_path):
    fx = json.load(open(fixture_path, encoding="utf-8"))
    entries = fx.get("texts") or fx.get("sequences")
    start = fx["start_token_id"]
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=1024, n_batch=1024, n_ubatch=1024,
                          logits_all=True, n_threads=1, n_threads_batch=1, verbose=False,
                          type_k=0, type_v=0)  # 0 = GGML_TYPE_F32
    alld = []
    for e in entries:
        ids = e["ids"]
        if not ids:
            continue
        llm.reset()
        llm.eval([start] + ids[:-1])
        z = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
        m = z.max(-1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(-1))
        lp = z[np.arange(len(ids)), ids] - lse
        d = np.abs(lp - np.asarray(e["logprobs"]))
        alld.append(d)
        name = e.get("name") or repr(e.get("text", ""))[:20]
        print(f"{name:22s} n={len(ids):4d}  mean|d|={d.mean():.2e}  max|d|={d.max():.2e}  "
              f"llama.cpp mean={lp.mean():.4f}  ref mean={np.mean(e['logprobs']):.4f}")
    d = np.concatenate(alld)
    print(f"ALL n={len(d)} mean|d|={d.mean():.3e} max|d|={d.max():.3e}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
