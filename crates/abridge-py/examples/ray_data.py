"""Compress a dataset of documents with Ray Data, the model loaded once per worker.

abridge needs no cluster of its own: `PromptCompressor.compress_prompts` is a batch call that
releases the GIL, so it drops into any engine that maps batches. With Ray Data, a callable
class is constructed once per worker (loading the model once) and `map_batches` sends it
batches of rows. Results equal a serial run: compression is deterministic.

    pip install "ray[data]" ./crates/abridge-py
    python crates/abridge-py/examples/ray_data.py
"""

from typing import Any, Dict, List

import numpy as np
import ray

from abridge import PromptCompressor


class Compress:
    """One per Ray worker: the model is loaded in the constructor, not per batch."""

    def __init__(self, rate: float = 0.5):
        self.compressor = PromptCompressor()
        self.rate = rate

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, List[Any]]:
        results = self.compressor.compress_prompts(list(batch["text"]), rate=self.rate)
        return {
            "id": list(batch["id"]),
            "compressed": [r["compressed_prompt"] for r in results],
            "origin_tokens": [r["origin_tokens"] for r in results],
            "compressed_tokens": [r["compressed_tokens"] for r in results],
        }


def compress_dataset(rows: List[Dict[str, Any]], rate: float = 0.5, workers: int = 1) -> List[Dict[str, Any]]:
    """Compresses each row's `text` on Ray Data; returns the rows in input order."""
    dataset = ray.data.from_items(rows)
    compressed = dataset.map_batches(
        Compress,
        fn_constructor_kwargs={"rate": rate},
        batch_size=4,
        concurrency=workers,
    )
    return sorted(compressed.take_all(), key=lambda row: row["id"])


if __name__ == "__main__":
    documents = [
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
        "Mount Kilimanjaro in Tanzania is the highest mountain in Africa, about 5,895 metres high.",
        "The Great Barrier Reef off Queensland is the world's largest coral reef system.",
    ]
    ray.init(num_cpus=2)
    for row in compress_dataset([{"id": i, "text": t} for i, t in enumerate(documents)]):
        print(row["id"], row["origin_tokens"], "->", row["compressed_tokens"], row["compressed"])
