#!/usr/bin/env python3
"""Makes small random checkpoints of exactly the two LLMLingua-2 architectures, for tests.

- tiny-bert-tokcls: `BertForTokenClassification` shaped like bert-base-multilingual-cased
  (cased WordPiece, BertNormalizer without lowercasing, [CLS] text [SEP]), its tokenizer built
  with the `tokenizers` package.
- tiny-xlmr-tokcls: `XLMRobertaForTokenClassification` shaped like xlm-roberta-large
  (positions numbered from pad+1, one token type), its tokenizer made as XLM-R's was: a
  sentencepiece Unigram model converted by transformers (Precompiled charsmap normalizer,
  Metaspace pre-tokenizer, <s> text </s>).

Both: 2 layers, hidden 64, 4 heads, intermediate 128, num_labels 2, the real models' position
tables (512 / 514), tensor names as transformers saves them. Weights are random (seeded) and
larger than transformers' init so attention and logits vary from token to token. The
tokenizers are trained on the small multilingual corpus below with the `tokenizers` package, so
characters outside it (some emoji) become the unknown token, as they do in mBERT.

Benchmark sizes (`--size minilm`: BERT shaped like all-MiniLM-L6-v2, 6 layers, hidden 384;
`--size xlmr-large`: XLM-R shaped like xlm-roberta-large, 24 layers, hidden 1024, 16 heads, a
250,002-row embedding table, about 2.2 GB) make one random checkpoint with the same tokenizer,
for timing only: write them outside the repository (e.g. /tmp), never commit them.

Needs: numpy, safetensors, tokenizers, sentencepiece, protobuf, transformers (no torch). Usage:
    python scripts/reference/make_tiny_encoders.py [OUT_DIR] [--size tiny|minilm|xlmr-large]
OUT_DIR defaults to crates/abridge-models/tests/fixtures. Then run encoder_reference.py.
"""

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parents[2]
LABELS = 2
# Model shapes: (layers, hidden, heads, intermediate, vocab rows or None for the tokenizer's).
SIZES = {
    "tiny": (2, 64, 4, 128, None),
    "minilm": (6, 384, 12, 1536, 30522),
    "xlmr-large": (24, 1024, 16, 4096, 250002),
}
LAYERS, HIDDEN, HEADS, INTERMEDIATE, _ = SIZES["tiny"]
# sentencepiece's vocabulary size for the XLM-R tokenizer.
VOCAB = 400

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Meeting notes: the budget review starts at 10 am on Monday, and everyone should attend.",
    "We discussed the quarterly results, the hiring plan and the new office in Berlin.",
    "Please send the report to the finance team before Friday; they need numbers, not opinions.",
    "The committee approved the proposal after a long debate about costs and benefits.",
    "Die Bundesregierung hat am Mittwoch neue Maßnahmen für den Klimaschutz beschlossen.",
    "Wir treffen uns morgen früh im Büro und besprechen die Ergebnisse der Umfrage.",
    "Über die Straße läuft ein großer Hund mit einem grünen Ball.",
    "我们明天在北京开会，讨论明年的预算和招聘计划。",
    "会议记录：预算审查将于周一上午十点开始，所有人都应该参加。",
    "这个项目的结果非常好，团队的工作效率提高了很多。",
    "회의는 내일 오전 10시에 시작합니다. 모든 팀원이 참석해야 합니다.",
    "우리는 분기 실적과 새로운 채용 계획에 대해 논의했습니다.",
    "예산 보고서를 금요일까지 재무팀에 보내 주세요.",
    "Great job everyone 🎉 see you at 3pm! 😀 👍",
    "Numbers like 3.14, 2024-05-01, $1,299.99 and 42% appear in reports.",
    "Email alice@example.com or call +1 (555) 010-9999 for details.",
    "def compress(text): return text[:100]  # code also shows up in prompts",
]


def build_wordpiece() -> Tokenizer:
    """A cased multilingual WordPiece tokenizer, configured like bert-base-multilingual-cased.

    The vocabulary is chosen here rather than by the `tokenizers` trainer, whose ties fall
    differently from run to run: every character of the corpus (alone and as a `##`
    continuation), its most frequent words and its most frequent 2-4 character continuations.
    """
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = Counter(
        word
        for line in CORPUS
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))
    )
    pieces = Counter()
    for word, count in words.items():
        for size in (2, 3, 4):
            for i in range(1, len(word) - size + 1):
                pieces["##" + word[i : i + size]] += count
    by_frequency = lambda counter: sorted(counter, key=lambda k: (-counter[k], k))  # noqa: E731
    chars = sorted({c for word in words for c in word})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + chars + ["##" + c for c in chars]
    tokens += [w for w in by_frequency(words) if len(w) > 1][:120]
    tokens += by_frequency(pieces)[:150]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}

    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    for token in specials:
        tokenizer.add_special_tokens([AddedToken(token, special=True)])
    return tokenizer


def build_unigram(work: Path) -> Tokenizer:
    """A SentencePiece-Unigram tokenizer made the way xlm-roberta-large's tokenizer.json was:
    a sentencepiece model (nmt_nfkc normalization, so the file carries a Precompiled charsmap
    normalizer) converted by transformers, with XLM-R's fairseq id layout (<s>=0, <pad>=1,
    </s>=2, <unk>=3, <mask> last) and its <s> $A </s> template."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizerFast

    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(work / "tiny"),
        vocab_size=VOCAB,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=2,
    )
    fast = XLMRobertaTokenizerFast(vocab_file=str(work / "tiny.model"))
    tokenizer = fast.backend_tokenizer
    assert [tokenizer.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    return tokenizer


def random_weights(rng, prefix, vocab, positions, token_types):
    """Tensors named as transformers saves *ForTokenClassification (no pooler)."""
    w = {}

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def layer_norm(name):
        w[f"{name}.weight"] = (1.0 + normal((HIDDEN,), 0.1)).astype(np.float32)
        w[f"{name}.bias"] = normal((HIDDEN,), 0.05)

    def linear(name, outputs, inputs, std):
        # Scaled so wider layers keep the tiny model's activation sizes (no change at hidden 64).
        w[f"{name}.weight"] = normal((outputs, inputs), std * (64 / min(inputs, HIDDEN)) ** 0.5)
        w[f"{name}.bias"] = normal((outputs,), 0.05)

    w[f"{prefix}embeddings.word_embeddings.weight"] = normal((vocab, HIDDEN), 0.5)
    w[f"{prefix}embeddings.position_embeddings.weight"] = normal((positions, HIDDEN), 0.5)
    w[f"{prefix}embeddings.token_type_embeddings.weight"] = normal((token_types, HIDDEN), 0.5)
    layer_norm(f"{prefix}embeddings.LayerNorm")
    for i in range(LAYERS):
        layer = f"{prefix}encoder.layer.{i}"
        for part in ("query", "key", "value"):
            linear(f"{layer}.attention.self.{part}", HIDDEN, HIDDEN, 0.2)
        linear(f"{layer}.attention.output.dense", HIDDEN, HIDDEN, 0.15)
        layer_norm(f"{layer}.attention.output.LayerNorm")
        linear(f"{layer}.intermediate.dense", INTERMEDIATE, HIDDEN, 0.15)
        linear(f"{layer}.output.dense", HIDDEN, INTERMEDIATE, 0.1)
        layer_norm(f"{layer}.output.LayerNorm")
    linear("classifier", LABELS, HIDDEN, 0.5)
    return w


def common_config(vocab):
    return {
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": HIDDEN,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "label2id": {"LABEL_0": 0, "LABEL_1": 1},
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": vocab,
    }


def save(out: Path, config: dict, tokenizer: Tokenizer, weights: dict, small: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save(str(out / "tokenizer.json"))
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(out / "model.safetensors", 0o644)
    size = sum((out / name).stat().st_size for name in ("config.json", "tokenizer.json", "model.safetensors"))
    print(f"{out}: vocab {tokenizer.get_vocab_size()}, {size / 1024:.0f} KiB")
    # With the reference outputs (about 60 KiB) each fixture folder stays under 1 MB.
    assert not small or size < 900 << 10, "fixtures must stay small"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "crates/abridge-models/tests/fixtures")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    args = parser.parse_args()
    out_dir = args.out_dir
    if args.size != "tiny":
        make_benchmark_model(out_dir, args.size)
        return

    bert_tok = build_wordpiece()
    vocab = bert_tok.get_vocab_size()
    bert_config = common_config(vocab) | BERT_CONFIG | {"directionality": "bidi"}
    rng = np.random.default_rng(20240501)
    save(out_dir / "tiny-bert-tokcls", bert_config, bert_tok, random_weights(rng, "bert.", vocab, 512, 2))

    with tempfile.TemporaryDirectory() as work:
        xlmr_tok = build_unigram(Path(work))
    vocab = xlmr_tok.get_vocab_size()
    xlmr_config = common_config(vocab) | XLMR_CONFIG
    rng = np.random.default_rng(20240502)
    save(out_dir / "tiny-xlmr-tokcls", xlmr_config, xlmr_tok, random_weights(rng, "roberta.", vocab, 514, 1))


# What each architecture's config.json adds to common_config.
BERT_CONFIG = {
    "architectures": ["BertForTokenClassification"],
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "pad_token_id": 0,
    "type_vocab_size": 2,
}
XLMR_CONFIG = {
    "architectures": ["XLMRobertaForTokenClassification"],
    "bos_token_id": 0,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-5,
    "max_position_embeddings": 514,
    "model_type": "xlm-roberta",
    "pad_token_id": 1,
    "type_vocab_size": 1,
}


def make_benchmark_model(out_dir: Path, size: str) -> None:
    """One random checkpoint of a real model's size (BERT for minilm, XLM-R for xlmr-large)."""
    global LAYERS, HIDDEN, HEADS, INTERMEDIATE
    LAYERS, HIDDEN, HEADS, INTERMEDIATE, vocab = SIZES[size]
    rng = np.random.default_rng(20240503)
    if size == "minilm":
        config = common_config(vocab) | BERT_CONFIG
        weights = random_weights(rng, "bert.", vocab, 512, 2)
        save(out_dir / "bench-minilm-tokcls", config, build_wordpiece(), weights, small=False)
        return
    with tempfile.TemporaryDirectory() as work:
        tokenizer = build_unigram(Path(work))
    config = common_config(vocab) | XLMR_CONFIG
    weights = random_weights(rng, "roberta.", vocab, 514, 1)
    save(out_dir / "bench-xlmr-large-tokcls", config, tokenizer, weights, small=False)


if __name__ == "__main__":
    main()
