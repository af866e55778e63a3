"""Python-side overhead per call vs the Rust library, on a ~2,000-token prompt.

    python crates/abridge-py/bench/overhead.py [--repeat 5]

The Rust library's time is what it measures itself (``timings.total_seconds``, from request to
result); the overhead is the rest of ``compress_prompt``'s wall time (argument checks, JSON in and
out, the label map, result formatting). The issue's goal is < 5%.
"""

import argparse
import pathlib
import statistics
import time

from abridge import PromptCompressor

REPO = pathlib.Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    compressor = PromptCompressor()
    sample = (REPO / "examples" / "sample.txt").read_text(encoding="utf-8")
    prompt = sample
    while compressor.count_tokens(prompt) < args.tokens:
        prompt += "\n\n" + sample
    tokens = compressor.count_tokens(prompt)
    compressor.compress_prompt(prompt, rate=0.5)  # warm up
    overheads, walls = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = compressor.compress_prompt(prompt, rate=0.5)
        wall = time.perf_counter() - started
        walls.append(wall)
        overheads.append(wall - result["timings"]["total_seconds"])
    wall = statistics.median(walls)
    overhead = statistics.median(overheads)
    print(f"{tokens} cl100k tokens: {wall:.3f} s per call, Python-side overhead {overhead * 1000:.1f} ms "
          f"({100 * overhead / wall:.2f}%)")


if __name__ == "__main__":
    main()
