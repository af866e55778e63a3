"""The Ray Data example (examples/ray_data.py) on a local Ray: results equal the serial run."""

import importlib.util
import pathlib

import pytest

ray = pytest.importorskip("ray")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "ray_data.py"


def load_example():
    spec = importlib.util.spec_from_file_location("ray_data_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ray_data_map_batches_equals_the_serial_run(compressor, documents, sample):
    example = load_example()
    rows = [{"id": i, "text": text} for i, text in enumerate(documents + [sample])]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = example.compress_dataset(rows, rate=0.5, workers=1)
    finally:
        ray.shutdown()
    serial = compressor.compress_prompts([row["text"] for row in rows], rate=0.5)
    assert [row["id"] for row in distributed] == list(range(len(rows)))
    assert [row["compressed"] for row in distributed] == [r["compressed_prompt"] for r in serial]
    assert [row["compressed_tokens"] for row in distributed] == [
        r["compressed_tokens"] for r in serial
    ]
    assert all(r["compressed_tokens"] < r["origin_tokens"] for r in serial)
