#!/usr/bin/env python3
"""Independent float64 numpy reference: per-token log-probs of a GGUF llama/qwen2 model.

What it does
------------
1. Reads a GGUF file with gguf-py (``gguf.GGUFReader``) and dequantises EVERY tensor to
   float64 with ``gguf.quants.dequantize``.  gguf-py stores shapes in GGML order
   (ne0 = innermost); a matrix with GGML shape [in, out] becomes a numpy array (out, in),
   so ``y = x @ W.T``.
2. Runs the decoder forward pass over all positions in numpy, float64 throughout:
     x = token_embd[ids]
     per layer:  h = RMSNorm(x) * attn_norm
                 q,k,v = h @ Wq.T (+bq), h @ Wk.T (+bk), h @ Wv.T (+bv)   # biases: qwen2
                 rotary on q,k (see below); GQA: query head j uses kv head j // (n_head/n_kv)
                 causal softmax(q k^T / sqrt(head_dim)) v  ->  @ Wo.T ; x += that
                 h = RMSNorm(x) * ffn_norm;  x += (silu(h Wg.T) * (h Wu.T)) Wd.T
     logits = RMSNorm(x) * output_norm @ output.T   (output = token_embd when tied / absent)
   RMSNorm(x) = x / sqrt(mean(x^2) + eps), eps = {arch}.attention.layer_norm_rms_epsilon.
3. Rotary embedding, theta_i = freq_base^(-2i/n_rot), angle = pos * theta_i:
     * arch ``llama``: llama.cpp "normal" rope = INTERLEAVED pairs (2i, 2i+1), because the HF->GGUF
       converter permuted the q/k rows.
     * arch ``qwen2``: llama.cpp NEOX rope = half-split pairs (i, i + n_rot/2).
   n_rot = {arch}.rope.dimension_count (default head_dim); dims >= n_rot are not rotated.

Scoring convention (the Rust side implements the same)
------------------------------------------------------
The models have add_bos_token=false.  We prepend ONE document-start token: the id of
``<|endoftext|>`` if that string is in the vocabulary, else ``tokenizer.ggml.bos_token_id``.
For text ids t[0..n): logprob[i] = ln p(t[i] | start, t[0..i]) for every i (n log-probs, nats).

This script does not tokenise; the ids come from an independent tokenizer (see README.md).

CLI
---
  python3 logprobs.py MODEL.gguf IN.json OUT.json
IN.json is a list of objects (or {"texts": [...]}) each with "ids" (list of int);
OUT.json is the same with "logprobs" added, plus "start_token_id" at top level.
"""
import json
import sys

import numpy as np
import gguf


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class Model:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.arch = arch = _field(r, "general.architecture")
        if arch not in ("llama", "qwen2"):
            raise ValueError(f"unsupported arch {arch!r}")
        p = lambda k, d=None: _field(r, f"{arch}.{k}", d)
        self.n_layer = int(p("block_count"))
        self.d = int(p("embedding_length"))
        self.n_head = int(p("attention.head_count"))
        self.n_kv = int(p("attention.head_count_kv", self.n_head))
        self.head_dim = self.d // self.n_head
        self.n_rot = int(p("rope.dimension_count", self.head_dim))
        self.eps = float(p("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(p("rope.freq_base", 10000.0))
        self.neox = arch == "qwen2"  # llama.cpp: LLM_ARCH_QWEN2 -> LLAMA_ROPE_TYPE_NEOX

        tokens = _field(r, "tokenizer.ggml.tokens")
        if "<|endoftext|>" in tokens:
            self.start_id = tokens.index("<|endoftext|>")
        else:
            self.start_id = int(_field(r, "tokenizer.ggml.bos_token_id"))

        self.w = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            shape = tuple(int(s) for s in reversed(t.shape))
            self.w[t.name] = np.asarray(a, dtype=np.float64).reshape(shape)
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]

    def rms(self, x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * g

    def rope(self, x, pos):
        """x: (T, H, head_dim); rotate the first n_rot dims per the arch convention."""
        n = self.n_rot
        theta = self.rope_base ** (-np.arange(0, n, 2, dtype=np.float64) / n)  # (n/2,)
        ang = pos[:, None] * theta[None, :]  # (T, n/2)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x = x.copy()
        if self.neox:
            a, b = x[..., : n // 2].copy(), x[..., n // 2 : n].copy()
            x[..., : n // 2] = a * cos - b * sin
            x[..., n // 2 : n] = a * sin + b * cos
        else:
            a, b = x[..., 0:n:2].copy(), x[..., 1:n:2].copy()
            x[..., 0:n:2] = a * cos - b * sin
            x[..., 1:n:2] = a * sin + b * cos
        return x

    def logits(self, ids):
        w, T, hd = self.w, len(ids), self.head_dim
        x = w["token_embd.weight"][np.asarray(ids)]
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        rep = self.n_head // self.n_kv
        for l in range(self.n_layer):
            b = f"blk.{l}."
            h = self.rms(x, w[b + "attn_norm.weight"])
            proj = {}
            for n in ("q", "k", "v"):
                y = h @ w[b + f"attn_{n}.weight"].T
                if b + f"attn_{n}.bias" in w:
                    y = y + w[b + f"attn_{n}.bias"]
                proj[n] = y.reshape(T, -1, hd)
            q, k, v = self.rope(proj["q"], pos), self.rope(proj["k"], pos), proj["v"]
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # head j -> kv j//rep
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            att = np.einsum("hts,shd->thd", s, v).reshape(T, -1)
            x = x + att @ w[b + "attn_output.weight"].T
            h = self.rms(x, w[b + "ffn_norm.weight"])
            g = h @ w[b + "ffn_gate.weight"].T
            u = h @ w[b + "ffn_up.weight"].T
            x = x + ((g / (1.0 + np.exp(-g))) * u) @ w[b + "ffn_down.weight"].T
        x = self.rms(x, w["output_norm.weight"])
        return x @ w["output.weight"].T

    def token_logprobs(self, ids):
        """ln p(ids[i] | start, ids[:i]) for every i, per the scoring convention."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        z = self.logits([self.start_id] + ids[:-1])
        m = z.max(-1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(-1))
        return (z[np.arange(len(ids)), ids] - lse).tolist()


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    model = Model(argv[1])
    with open(argv[2], encoding="utf-8") as f:
        data = json.load(f)
    items = data["texts"] if isinstance(data, dict) else data
    for it in items:
        it["logprobs"] = model.token_logprobs(it["ids"])
    out = {"start_token_id": model.start_id, "texts": items}
    with open(argv[3], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv)
