"""Shared fixtures: one PromptCompressor (the real default model) for the whole session."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
SAMPLE = (REPO / "examples" / "sample.txt").read_text(encoding="utf-8")

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the "
    "engineering company of Gustave Eiffel and completed in 1889 for the World's Fair.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa, rising about 5,895 metres "
    "above sea level. Its three volcanic cones are Kibo, Mawenzi and Shira.",
    "The Great Barrier Reef off Queensland, Australia, is the world's largest coral reef system, "
    "made of over 2,900 individual reefs and 900 islands stretching over 2,300 kilometres.",
    "Penguins are flightless seabirds of the southern hemisphere. The emperor penguin is the "
    "tallest and heaviest of all living penguin species, reaching 122 centimetres in height.",
]


@pytest.fixture(scope="session")
def compressor():
    from abridge import PromptCompressor

    return PromptCompressor()


@pytest.fixture(scope="session")
def sample():
    return SAMPLE


@pytest.fixture(scope="session")
def documents():
    return list(DOCUMENTS)


def cli_binary():
    """The abridge CLI, for equality checks: $ABRIDGE_CLI, else a built one in the workspace."""
    candidates = [os.environ.get("ABRIDGE_CLI", "")]
    for target in (os.environ.get("CARGO_TARGET_DIR", ""), str(REPO / "target")):
        if target:
            candidates += [os.path.join(target, "debug", "abridge"), os.path.join(target, "release", "abridge")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
