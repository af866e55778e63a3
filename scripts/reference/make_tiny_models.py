#!/usr/bin/env python3
"""Write tiny random-weight GGUF models (llama + qwen2) and their reference fixtures.

  python3 make_tiny_models.py [OUT_DIR]          (default: crates/abridge-models/tests/fixtures)
  python3 make_tiny_models.py --all-f32 OUT_DIR  (same weights, every tensor stored as F32;
                                                  only used to cross-check against llama.cpp)

Outputs per arch: tiny-<arch>.gguf and tiny-<arch>.json.  The JSON holds
  * "dequant": name -> {"type", "shape" (GGML order, ne0 first), "first8": first 8 values of
    the tensor's flattened data in file order, dequantised by gguf-py (bit-identical to ggml's
    own to_float, see check_dequant_ggml.py), "every97th": values at flat indices 0, 97, 194, ...
    (first 64; 97 is prime, so all positions inside quant blocks get hit), "sum" and "sum_abs"
    of the whole dequantised tensor (float64 accumulation)};
  * "sequences": short token id lists with reference log-probs from logprobs.py
    (start token = <|endoftext|>, see logprobs.py), some from text via llama.cpp if installed.

Models (seeded, deterministic):
  tiny-llama : 2 layers, d=64, 4 heads / 2 KV (head_dim 16), FFN 96, ctx 256, tied embeddings;
               tensors in F32 (norms), F16, Q4_1, Q8_0.  pre-tokenizer "smollm".
  tiny-qwen2 : 2 layers, d=256, 4 heads / 2 KV (head_dim 64), FFN 512, ctx 256, q/k/v biases,
               untied output.weight; tensors in F32, F16, Q4_0, Q5_0, Q8_0, Q4_K, Q6_K.
               pre-tokenizer "qwen2".
Q4_0/Q4_1/Q5_0/Q8_0 are produced with gguf.quants.quantize from random floats.  gguf-py cannot
quantise K-quants, so Q4_K/Q6_K blocks are crafted: random quant bits/6-bit scales (any bit
pattern is valid) with finite, modest, normal f16 super-block scales.
"""
import json
import os
import sys

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logprobs import Model  # noqa: E402

Q = gguf.GGMLQuantizationType
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "crates", "abridge-models", "tests", "fixtures")


def byte_symbols():
    """GPT-2 byte -> printable unicode symbol map (written from the published scheme)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


MERGES = [
    "Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "n d", "Ġa nd", "r e", "a t",
    "Ġ c", "Ġ w", "Ġ o", "e n", "i s", "Ġ f", "o r", "Ġ h", "a n", "in g", "Ġc at", "Ġh at",
    "Ġ 1", "Ċ Ċ", "Ġ Ġ", "Ġs at", "Ġo n",
    "' T", ". t", ".t he",  # only reachable with the qwen2 pre-tokenizer (see SEQ_TEXTS)
]
CONTROL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def vocab():
    """Like SmolLM2's: control tokens first (ids 0..2), then the 256 byte symbols in GPT-2's
    order (printable ones first, so id != byte value), then one token per merge."""
    sym = byte_symbols()
    order = sorted(range(256), key=lambda b: (ord(sym[b]) >= 256, ord(sym[b])))
    tokens = CONTROL + [sym[b] for b in order]
    for m in MERGES:
        a, b = m.split(" ")
        assert a in tokens and b in tokens, m
        tokens.append(a + b)
    types = [3] * len(CONTROL) + [1] * (len(tokens) - len(CONTROL))
    return tokens, types


def quantize(w, qtype, rng):
    """w: float array (rows, row_len) -> (bytes or float array, qtype)."""
    if qtype == Q.F32:
        return w.astype(np.float32)
    if qtype == Q.F16:
        return w.astype(np.float16)
    if qtype in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q8_0):
        return gguf.quants.quantize(w.astype(np.float32), qtype)
    rows, n = w.shape
    nb = rows * n // 256
    sigma = float(np.std(w))
    if qtype == Q.Q4_K:  # d f16, dmin f16, scales[12] (6-bit packed), qs[128]
        d = (sigma / 257.0) * rng.uniform(0.7, 1.3, nb)
        dmin = d * 7.5 * rng.uniform(0.8, 1.2, nb)
        blk = np.concatenate([
            d.astype(np.float16).view(np.uint8).reshape(nb, 2),
            dmin.astype(np.float16).view(np.uint8).reshape(nb, 2),
            rng.integers(0, 256, (nb, 12 + 128), dtype=np.uint8),
        ], axis=1)
    elif qtype == Q.Q6_K:  # ql[128], qh[64], int8 scales[16], d f16
        d = (sigma / 176.0) * rng.uniform(0.7, 1.3, nb)
        blk = np.concatenate([
            rng.integers(0, 256, (nb, 128 + 64), dtype=np.uint8),
            rng.integers(-16, 17, (nb, 16)).astype(np.int8).view(np.uint8),
            d.astype(np.float16).view(np.uint8).reshape(nb, 2),
        ], axis=1)
    else:
        raise ValueError(qtype)
    assert np.all(np.isfinite(d.astype(np.float16))) and np.all(np.abs(d.astype(np.float16)) > 6.2e-5)
    return blk.reshape(rows, -1)


def build(path, arch, seed, all_f32=False):
    rng = np.random.default_rng(seed)
    tokens, types = vocab()
    V = len(tokens)
    if arch == "llama":
        d, H, KV, F = 64, 4, 2, 96
        t = {"embd": Q.Q8_0, "q": [Q.Q4_1, Q.F16], "k": [Q.Q8_0, Q.Q4_1], "v": [Q.F16, Q.Q8_0],
             "o": [Q.Q4_1, Q.Q4_1], "gate": [Q.Q8_0, Q.F16], "up": [Q.Q4_1, Q.Q8_0],
             "down": [Q.F16, Q.Q4_1]}
    else:
        d, H, KV, F = 256, 4, 2, 512
        t = {"embd": Q.Q4_K, "out": Q.Q6_K, "q": [Q.Q4_K, Q.Q5_0], "k": [Q.Q8_0, Q.Q4_K],
             "v": [Q.Q6_K, Q.Q4_0], "o": [Q.Q4_0, Q.Q6_K], "gate": [Q.Q5_0, Q.Q4_K],
             "up": [Q.Q4_K, Q.Q4_0], "down": [Q.Q6_K, Q.F16]}
    hd, L, ctx = d // H, 2, 256
    tensors = []  # (name, float64 array (rows, cols) or vector, qtype)

    def mat(name, rows, cols, qtype, scale=1.0):
        tensors.append((name, rng.standard_normal((rows, cols)) * scale / np.sqrt(cols), qtype))

    def vec(name, n, mean, std):
        tensors.append((name, mean + std * rng.standard_normal(n), Q.F32))

    mat("token_embd.weight", V, d, t["embd"], scale=1.5)
    for l in range(L):
        b = f"blk.{l}."
        vec(b + "attn_norm.weight", d, 1.0, 0.1)
        mat(b + "attn_q.weight", H * hd, d, t["q"][l], 1.5)
        mat(b + "attn_k.weight", KV * hd, d, t["k"][l], 1.5)
        mat(b + "attn_v.weight", KV * hd, d, t["v"][l])
        if arch == "qwen2":
            vec(b + "attn_q.bias", H * hd, 0.0, 0.5)
            vec(b + "attn_k.bias", KV * hd, 0.0, 0.5)
            vec(b + "attn_v.bias", KV * hd, 0.0, 0.1)
        mat(b + "attn_output.weight", d, H * hd, t["o"][l])
        vec(b + "ffn_norm.weight", d, 1.0, 0.1)
        mat(b + "ffn_gate.weight", F, d, t["gate"][l])
        mat(b + "ffn_up.weight", F, d, t["up"][l])
        mat(b + "ffn_down.weight", d, F, t["down"][l])
    vec("output_norm.weight", d, 1.0, 0.1)
    if arch == "qwen2":
        mat("output.weight", V, d, t["out"], scale=1.5)

    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch} (random weights, abridge test fixture)")
    w.add_block_count(L)
    w.add_context_length(ctx)
    w.add_embedding_length(d)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5 if arch == "llama" else 1e-6)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm" if arch == "llama" else "qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|im_start|>") if arch == "llama" else tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    if arch == "llama":
        w.add_unk_token_id(tokens.index("<|endoftext|>"))
        w.add_pad_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    for name, a, qt in tensors:
        if all_f32:
            qt = Q.F32
        if qt in (Q.F32, Q.F16):
            w.add_tensor(name, quantize(a, qt, rng))
        else:
            w.add_tensor(name, quantize(a, qt, rng), raw_dtype=qt)
    return w


def write(arch, seed, out_dir, all_f32):
    path = os.path.join(out_dir, f"tiny-{arch}.gguf")
    w = build(path, arch, seed, all_f32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# The last text tokenises differently under "smollm" (GPT-2 regex: case-sensitive contractions,
# punctuation never joins letters) and "qwen2" (case-insensitive 'T, [^\r\n\p{L}\p{N}]?\p{L}+).
SEQ_TEXTS = ["the cat sat on the hat", "<|im_start|>user\nhi 12345<|im_end|>\n", "Hello,  World!\n\n",
             "DON'T stop.the 42!\n\nx"]


def llamacpp_ids(path, text):
    try:
        import llama_cpp
    except ImportError:
        return None
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def fixture(path):
    r = gguf.GGUFReader(path)
    deq = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)
        deq[t.name] = {"type": t.tensor_type.name, "shape": [int(s) for s in t.shape],
                       "first8": [float(x) for x in a[:8]],
                       "every97th": [float(x) for x in a[::97][:64]],
                       "sum": float(np.sum(a, dtype=np.float64)),
                       "sum_abs": float(np.sum(np.abs(a), dtype=np.float64))}
    m = Model(path)
    seqs = []
    for text in SEQ_TEXTS:
        ids = llamacpp_ids(path, text)
        if ids is not None:
            seqs.append({"text": text, "ids": ids})
    V = len(m.w["token_embd.weight"])
    seqs.append({"ids": [5, 100, 256, 7, 259, 270, V - 1, V - 2, 32, 32, 32, 0, 1, 2]})
    seqs.append({"ids": [int(x) for x in np.random.default_rng(7).integers(0, V, 40)]})
    for s in seqs:
        s["logprobs"] = m.token_logprobs(s["ids"])
    return {"file": os.path.basename(path), "arch": m.arch, "start_token_id": m.start_id,
            "rope": "neox (half-split)" if m.neox else "normal (interleaved pairs)",
            "tokenizer_source": "llama.cpp (llama-cpp-python, vocab_only, add_bos=False, special=True) "
                                "for entries with text; other id lists are synthetic",
            "sequences": seqs, "dequant": deq}


def main(argv):
    all_f32 = "--all-f32" in argv
    argv = [a for a in argv if a != "--all-f32"]
    out_dir = argv[1] if len(argv) > 1 else DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    for arch, seed in (("llama", 1234), ("qwen2", 5678)):
        path = write(arch, seed, out_dir, all_f32)
        fx = fixture(path)
        with open(os.path.join(out_dir, f"tiny-{arch}.json"), "w", encoding="utf-8") as f:
            json.dump(fx, f, ensure_ascii=False, indent=1)
        print(path, os.path.getsize(path), "bytes;", len(fx["sequences"]), "sequences")


if __name__ == "__main__":
    main(sys.argv)
