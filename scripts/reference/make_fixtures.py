#!/usr/bin/env python3
"""Write the SmolLM2 tokenizer and log-prob fixtures.

  python3 make_fixtures.py [MODEL.gguf]   (default ~/.cache/abridge/models/SmolLM2-135M-Instruct.Q4_1.gguf)

Token ids come from llama.cpp's own tokenizer (llama-cpp-python:
Llama(model, vocab_only=True).tokenize(text, add_bos=False, special=True)), i.e. NOT from the
Rust construction.  Each case is round-tripped with detokenize(ids, special=True).
Log-probs come from logprobs.py (float64 numpy forward; start token = <|endoftext|>).

Writes crates/abridge-models/tests/fixtures/{tokenizer_ids.json, smollm2_logprobs.json}.
"""
import hashlib
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logprobs import Model  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "crates", "abridge-models", "tests", "fixtures")
DEFAULT_MODEL = os.path.expanduser("~/.cache/abridge/models/SmolLM2-135M-Instruct.Q4_1.gguf")

# Original prose written for this fixture (not taken from any source).
PROSE = (
    "The ferry across the estuary ran twice a day, and most people in the village planned their "
    "lives around it. In the morning it carried schoolchildren, nurses and a few sleepy fishermen "
    "who had missed the tide; in the evening it brought them back, along with crates of bread, "
    "newspapers and whatever the market traders had failed to sell. When the old captain retired "
    "after thirty-one years, the council worried that nobody would want the job. The wages were "
    "modest, the hours were awkward, and the river could turn grey and violent within minutes. To "
    "everyone's surprise, his granddaughter applied. She had studied engineering in the city and "
    "returned with a notebook full of ideas about fuel, timetables and the rusting hull. Some of "
    "the older passengers grumbled at first, especially when she painted the cabin a bright "
    "yellow. By the end of the summer, however, the boat was running on time, the engine no "
    "longer coughed black smoke, and the children had started calling it the lemon. Nobody could "
    "remember why they had ever doubted her."
)

SCORED = [
    ("prose", PROSE),
    ("numbers", "Invoice #20931 dated 2024-03-15: 3 × €1,299.99 = €3,899.97 (incl. 19% VAT). "
                "Pay $4,250.00 by 15/04/2024 23:59 UTC, or call +1 (555) 010-4477. Q3 FY2025 grew 7.5%."),
    ("code", 'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n'
             "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
             "print([fib(i) for i in range(10)])  # [0, 1, 1, 2, ...]\n"
             "fn main() { let v: Vec<u32> = (1..=5).collect(); println!(\"{:?}\", v); }\n"),
    ("unicode", "Café crème, naïve façade, Ærøskøbing. 東京は今日も晴れです。北京欢迎你！ "
                "한국어 문장입니다. Emoji: 😀🎉👍🏽 — ¿Qué tal? Ελληνικά, русский текст."),
    ("chatml", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
               "Summarise the meeting notes in two sentences.<|im_end|>\n<|im_start|>assistant\n"
               "The team agreed to ship on Friday and to review the budget next week.<|im_end|>\n"),
    ("whitespace", "col1\tcol2\t\tcol3\r\nline two   has   runs of spaces\r\n\r\n    indented line\n\n\n"
                   "  trailing spaces   \n\t\tdouble tab\u00a0nbsp\u3000ideographic space end"),
]

TOKENIZER_ONLY = [
    "See https://example.com/path/to?q=1&lang=en#frag or mail jane.doe+test@example.org today.",
    "I'm sure they'll say it's fine, but we've heard you'd won't. DON'T SHOUT, It'S odd.",
    "31415926535897932384626433832795 and 1234567890, also ½, Ⅻ, ٣٤٥ and ²³.",
    "  leading spaces",
    "ends with two newlines\n\n",
    "مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
    "family: 👨\u200d👩\u200d👧\u200d👦 flag: 🇩🇪 keycap: 1\ufe0f\u20e3",
    "\u0301",
    "",
    "a<|endoftext|>b<|im_start|><|im_end|>  <|im_start|> x",
    " ",
    "\n",
    "hello world",
    "   \n  x  \n\n\t y \r\n\r\n",
    "hello\u00a0\u00a0world\u200bzero\u2028line 1,000,000.50",
    "'s 'S x's <|im_start <|im_end|>tail",
]


def main(argv):
    model_path = argv[1] if len(argv) > 1 else DEFAULT_MODEL
    import llama_cpp

    sha = hashlib.sha256(open(model_path, "rb").read()).hexdigest()
    llm = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
    source = (f"llama.cpp via llama-cpp-python {llama_cpp.__version__}: "
              "Llama(model, vocab_only=True).tokenize(text.encode(), add_bos=False, special=True)")

    def tok(text):
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        back = llm.detokenize(ids, special=True)
        return ids, back == text.encode("utf-8")

    cases = []
    for text in [t for _, t in SCORED] + TOKENIZER_ONLY:
        ids, ok = tok(text)
        cases.append({"text": text, "ids": ids, "roundtrip": ok})
        if not ok:
            print("round trip differs:", repr(text))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tokenizer_ids.json"), "w", encoding="utf-8") as f:
        json.dump({"model_sha256": sha, "tokenizer_source": source, "cases": cases}, f,
                  ensure_ascii=False, indent=1)

    model = Model(model_path)
    texts = []
    for name, text in SCORED:
        ids, _ = tok(text)
        lp = model.token_logprobs(ids)
        texts.append({"name": name, "text": text, "ids": ids, "logprobs": lp})
        print(f"{name:11s} {len(ids):4d} tokens  mean logprob {sum(lp) / len(lp):8.4f}  "
              f"ppl {math.exp(-sum(lp) / len(lp)):8.3f}")
    with open(os.path.join(OUT, "smollm2_logprobs.json"), "w", encoding="utf-8") as f:
        json.dump({"model_sha256": sha, "start_token_id": model.start_id, "tokenizer_source": source,
                   "logprob_source": "scripts/reference/logprobs.py (float64 numpy, gguf-py dequant)",
                   "texts": texts}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv)
