#!/usr/bin/env python3
"""Independent reference outputs for abridge's BERT / XLM-RoBERTa encoder runtime.

A plain numpy forward pass (float64, padded batch with an additive attention mask, as
transformers runs it) over the checkpoints' own safetensors, with tokenization by the
`tokenizers` package. Writes, next to the Rust tests:

- tests/fixtures/tiny-bert-tokcls/reference.json, tests/fixtures/tiny-xlmr-tokcls/reference.json:
  for each text its token ids (no special tokens), byte offsets and the per-token logits; short
  texts in one padded batch, one long text (> 512 tokens) through the runtime's documented
  overlapping windows (abridge_models::windows::overlapping).
- tests/fixtures/minilm-reference.json: all-MiniLM-L6-v2 token ids and mean-pooled, normalised
  embeddings; a long text through disjoint windows (abridge_models::windows::disjoint).

Cross-checks, when the packages are installed (pip install torch transformers
sentence-transformers): the tiny checkpoints load into transformers'
*ForTokenClassification classes with no missing or unexpected tensor, and give the same logits;
MiniLM's embeddings equal sentence-transformers' (Transformer(max_seq_length=256) + mean Pooling
+ Normalize, the all-MiniLM-L6-v2 pipeline). The script prints each maximum difference.

Needs: numpy, safetensors, tokenizers. Usage:
    python scripts/reference/make_tiny_encoders.py
    python scripts/reference/encoder_reference.py [MINILM_DIR]
MINILM_DIR defaults to ~/.cache/abridge/models/all-MiniLM-L6-v2 (`abridge models fetch`).
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates/abridge-models/tests/fixtures"

# Words outside the tiny tokenizers' corpus too, so they split into pieces.
CLASSIFIER_TEXTS = [
    "The quick brown fox jumps over the lazy dog; unbelievably, nobody noticed.",
    "Die Bundesregierung hat am Donnerstag überraschend Steuererleichterungen beschlossen.",
    "我们明天在上海开会，讨论预算和风险。",
    "회의는 내일 오후 3시에 시작합니다. 감사합니다!",
    "Great job 🎉🚀 see you at 3pm! 👍🏽 Ｆｕｌｌｗｉｄｔｈ ①",
    "  Spaces   and\nnewlines\tmixed  ",
    "",
]

MINILM_TEXTS = [
    "A man is playing a guitar on the stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply after the interest rate announcement.",
    "Shares dropped steeply when the central bank raised rates.",
    "Der Hund schläft auf dem Sofa.",
    "I love pizza 🍕 and pasta!",
    "",
]


def long_text(words: int) -> str:
    """A long mixed text: enough tokens for several 512-token windows."""
    pieces = [
        "The budget review starts at 10 am on Monday.",
        "Die Ergebnisse der Umfrage sind gut.",
        "我们讨论明年的预算。",
        "모든 팀원이 참석해야 합니다.",
        "Email alice@example.com 🎉 for details.",
    ]
    out, count, i = [], 0, 0
    while count < words:
        out.append(pieces[i % len(pieces)])
        count += len(pieces[i % len(pieces)].split())
        i += 1
    return " ".join(out)


# ---- tokenization ---------------------------------------------------------------------------


def load_tokenizer(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def byte_offsets(text: str, char_offsets):
    """The Python binding reports character offsets; the Rust runtime reports byte offsets."""
    starts = [0]
    for ch in text:
        starts.append(starts[-1] + len(ch.encode("utf-8")))
    return [[starts[a], starts[b]] for a, b in char_offsets]


def tokenize(tok: Tokenizer, text: str):
    enc = tok.encode(text, add_special_tokens=False)
    return list(enc.ids), byte_offsets(text, enc.offsets)


def special_frame(tok: Tokenizer):
    """Ids the post-processor puts before and after a text (from its own template)."""
    enc = tok.encode("a", add_special_tokens=True)
    seq = enc.sequence_ids
    first = next(i for i, s in enumerate(seq) if s is not None)
    last = max(i for i, s in enumerate(seq) if s is not None)
    return enc.ids[:first], enc.ids[last + 1 :]


# ---- the network ----------------------------------------------------------------------------


class Bert:
    """BertModel / XLMRobertaModel forward, post-LN, GELU (erf), in float64."""

    def __init__(self, folder: Path):
        self.config = json.loads((folder / "config.json").read_text())
        weights = load_file(str(folder / "model.safetensors"))
        prefix = min(
            (k[: -len("embeddings.word_embeddings.weight")] for k in weights
             if k.endswith("embeddings.word_embeddings.weight")),
            key=len,
        )
        self.w = {k[len(prefix):] if k.startswith(prefix) else k: v.astype(np.float64)
                  for k, v in weights.items() if v.dtype.kind == "f"}
        c = self.config
        self.roberta = c["model_type"] in ("roberta", "xlm-roberta")
        self.pad = c.get("pad_token_id", 0)
        self.heads = c["num_attention_heads"]
        self.eps = c.get("layer_norm_eps", 1e-12)
        self.max_tokens = c["max_position_embeddings"] - (self.pad + 1 if self.roberta else 0)

    def layer_norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def hidden_states(self, batch):
        """Last hidden states of a list of id sequences, run as one right-padded batch."""
        n = max(len(s) for s in batch)
        ids = np.full((len(batch), n), self.pad, dtype=np.int64)
        mask = np.zeros((len(batch), n))
        for b, seq in enumerate(batch):
            ids[b, : len(seq)] = seq
            mask[b, : len(seq)] = 1
        if self.roberta:  # transformers' create_position_ids_from_input_ids
            positions = (np.cumsum(mask, axis=1) * mask).astype(np.int64) + self.pad
        else:
            positions = np.broadcast_to(np.arange(n), ids.shape)
        x = (self.w["embeddings.word_embeddings.weight"][ids]
             + self.w["embeddings.position_embeddings.weight"][positions]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        x = self.layer_norm(x, "embeddings.LayerNorm")
        additive = (1.0 - mask)[:, None, None, :] * np.finfo(np.float64).min
        hidden = x.shape[-1]
        d = hidden // self.heads
        try:
            from scipy.special import erf
        except ImportError:
            erf = np.vectorize(math.erf)
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def heads(t):
                return t.reshape(len(batch), n, self.heads, d).transpose(0, 2, 1, 3)

            q = heads(self.linear(x, p + "attention.self.query"))
            k = heads(self.linear(x, p + "attention.self.key"))
            v = heads(self.linear(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + additive
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(len(batch), n, hidden)
            x = self.layer_norm(self.linear(ctx, p + "attention.output.dense") + x,
                                p + "attention.output.LayerNorm")
            inter = self.linear(x, p + "intermediate.dense")
            inter = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))
            x = self.layer_norm(self.linear(inter, p + "output.dense") + x, p + "output.LayerNorm")
        return [x[b, : len(seq)] for b, seq in enumerate(batch)]

    def logits(self, batch):
        return [self.linear(h, "classifier") for h in self.hidden_states(batch)]


# ---- the runtime's windows, restated ----------------------------------------------------------


def overlapping_windows(n, capacity):
    """(tokens, owned) ranges: windows overlap by capacity // 4, overlaps split in the middle."""
    if n == 0:
        return []
    if n <= capacity:
        return [((0, n), (0, n))]
    stride = capacity - capacity // 4
    starts, s = [], 0
    while s + capacity < n:
        starts.append(s)
        s += stride
    starts.append(n - capacity)
    windows = []
    for start in starts:
        owned_start = 0
        if windows:
            (p_start, p_end), (o_start, _) = windows[-1]
            owned_start = (start + p_end) // 2
            windows[-1] = ((p_start, p_end), (o_start, owned_start))
        windows.append(((start, start + capacity), (owned_start, start + capacity)))
    return windows


def disjoint_windows(n, capacity):
    count = max(1, -(-n // capacity))
    return [(i * n // count, (i + 1) * n // count) for i in range(count)]


# ---- fixtures ---------------------------------------------------------------------------------


def rounded(rows):
    return [[float(f"{v:.7g}") for v in row] for row in np.asarray(rows).reshape(len(rows), -1)]


def classifier_reference(name: str) -> None:
    folder = FIXTURES / name
    model = Bert(folder)
    tok = load_tokenizer(folder / "tokenizer.json")
    before, after = special_frame(tok)
    capacity = model.max_tokens - len(before) - len(after)
    texts = CLASSIFIER_TEXTS + [long_text(260)]
    entries, batch, places = [], [], []
    for t, text in enumerate(texts):
        ids, offsets = tokenize(tok, text)
        entries.append({"text": text, "ids": ids, "offsets": offsets, "logits": [None] * len(ids)})
        for (ws, we), (os_, oe) in overlapping_windows(len(ids), capacity):
            batch.append(before + ids[ws:we] + after)
            places.append((t, ws, os_, oe))
    logits = model.logits(batch)
    for (t, ws, os_, oe), out in zip(places, logits):
        for i in range(os_, oe):
            entries[t]["logits"][i] = out[len(before) + i - ws]
    for e in entries:
        e["logits"] = rounded(e["logits"]) if e["ids"] else []
    long_entry = entries[-1]
    assert len(long_entry["ids"]) > model.max_tokens, "the long text must exceed one window"
    # The whole framed sequences too, special tokens included: checks the raw-ids entry point.
    framed = [before + e["ids"] + after for e in entries[:-1]]
    full = {"input_ids": framed, "logits": [rounded(l) for l in model.logits(framed)]}
    cross_check_transformers(folder, framed, full["logits"])
    out = {
        "model": name,
        "windows": "abridge_models::windows::overlapping, capacity = max_tokens - special tokens",
        "capacity": capacity,
        "texts": entries,
        "framed": full,
    }
    (folder / "reference.json").write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"{name}: {len(entries)} texts, long text {len(long_entry['ids'])} tokens")


def cross_check_transformers(folder: Path, framed, logits) -> None:
    try:
        import torch
        from transformers import AutoModelForTokenClassification
    except ImportError:
        print("  (transformers not installed: skipping the cross-check)")
        return
    model, info = AutoModelForTokenClassification.from_pretrained(
        str(folder), output_loading_info=True, attn_implementation="eager"
    )
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"tensor names differ from transformers': {bad}"
    model.eval()
    n = max(len(s) for s in framed)
    pad = model.config.pad_token_id
    ids = torch.tensor([s + [pad] * (n - len(s)) for s in framed])
    mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in framed])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits.numpy()
    diff = max(np.abs(out[b, : len(s)] - np.array(logits[b])).max() for b, s in enumerate(framed))
    print(f"  {type(model).__name__} (transformers, float32) vs numpy: max |diff| {diff:.2e}")
    assert diff < 1e-4


def minilm_reference(folder: Path) -> None:
    model = Bert(folder)
    tok = load_tokenizer(folder / "tokenizer.json")
    before, after = special_frame(tok)
    capacity = model.max_tokens - len(before) - len(after)
    texts = MINILM_TEXTS + [long_text(500)]
    entries, batch, owner = [], [], []
    for t, text in enumerate(texts):
        ids, offsets = tokenize(tok, text)
        entries.append({"text": text, "ids": ids, "offsets": offsets})
        for ws, we in disjoint_windows(len(ids), capacity):
            batch.append(before + ids[ws:we] + after)
            owner.append(t)
    states = model.hidden_states(batch)
    for t, entry in enumerate(entries):
        rows = np.concatenate([s for s, o in zip(states, owner) if o == t])
        mean = rows.mean(0)
        entry["embedding"] = [float(f"{v:.7g}") for v in mean / max(np.linalg.norm(mean), 1e-12)]
    assert len(entries[-1]["ids"]) > model.max_tokens
    cross_check_sentence_transformers(folder, entries[:-1])
    out = {
        "model": "all-MiniLM-L6-v2",
        "windows": "abridge_models::windows::disjoint, capacity = max_tokens - special tokens",
        "capacity": capacity,
        "texts": entries,
    }
    path = FIXTURES / "minilm-reference.json"
    path.write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"all-MiniLM-L6-v2: {len(entries)} texts, long text {len(entries[-1]['ids'])} tokens -> {path}")


def cross_check_sentence_transformers(folder: Path, entries) -> None:
    try:
        from sentence_transformers import SentenceTransformer, models
    except ImportError:
        print("  (sentence-transformers not installed: skipping the cross-check)")
        return
    st = SentenceTransformer(modules=[
        models.Transformer(str(folder), max_seq_length=256),
        models.Pooling(384, pooling_mode="mean"),
        models.Normalize(),
    ], device="cpu")
    got = st.encode([e["text"] for e in entries], convert_to_numpy=True)
    diff = max(np.abs(g - np.array(e["embedding"])).max() for g, e in zip(got, entries))
    ids = st.tokenize([e["text"] for e in entries])["input_ids"]
    for row, e in zip(ids.tolist(), entries):
        ours = [i for i in row if i != 0][1:-1]
        assert ours == e["ids"], (ours, e["ids"])
    print(f"  sentence-transformers vs numpy: max |diff| {diff:.2e}, token ids equal")
    assert diff < 1e-5


def main() -> None:
    default = Path(os.environ.get("ABRIDGE_HOME") or Path.home() / ".cache/abridge/models")
    minilm = Path(sys.argv[1]) if len(sys.argv) > 1 else default / "all-MiniLM-L6-v2"
    classifier_reference("tiny-bert-tokcls")
    classifier_reference("tiny-xlmr-tokcls")
    minilm_reference(minilm)


if __name__ == "__main__":
    main()
