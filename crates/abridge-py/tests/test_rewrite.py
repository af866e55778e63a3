"""``abridge.compress(..., method="rewrite")`` with the real Qwen2.5-Coder-0.5B-Instruct
(scripts/fetch-evaluator.py installs it; scripts/test.sh does): the budget, the report and the
guard's promise; and the errors for a missing, wrong or misplaced ``rewrite_model=``, which need
no model."""

import pathlib
import re

import pytest

import abridge
from abridge import _abridge
from conftest import SAMPLE

QUESTION = "When did the railway arrive in Vellmouth?"
DEFAULT_REWRITER = pathlib.Path(_abridge.models_dir()) / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@pytest.mark.skipif(
    not DEFAULT_REWRITER.is_file(),
    reason="Qwen2.5-Coder-0.5B-Instruct is not installed: run scripts/fetch-evaluator.py",
)
def test_a_rewrite_meets_the_target_and_states_only_the_sources_facts():
    result = abridge.compress(
        SAMPLE, question=QUESTION, method="rewrite", target_token=60, rewrite_model=DEFAULT_REWRITER
    )
    assert result["method"] == "rewrite"
    assert result["target_tokens"] == 60
    # Within the target, and the fill brings it within 3% of it (give or take a word's tokens).
    assert 56 <= result["compressed_tokens"] <= 60, result
    assert result["text"].endswith("\n\n" + QUESTION)
    rewrite = result["rewrite"]
    assert rewrite["generator"] == DEFAULT_REWRITER.name
    assert rewrite["generated"] and rewrite["rewritten"], rewrite
    assert 60 < rewrite["extract_tokens"] <= 120, rewrite
    # The context is the rewrite, then the fill from the extract.
    context = result["text"][: -len(QUESTION)].strip()
    assert context == " ".join(part for part in (rewrite["rewritten"], rewrite["fill"]) if part)
    # Every number in the result is one the sample states (the faithfulness guard's promise).
    for number in re.findall(r"\d+(?:,\d+)*", context):
        assert number in SAMPLE, (number, context)
    # Without rewrite_model= the packaged default is the one; greedy, so the same text.
    default = abridge.compress(SAMPLE, question=QUESTION, method="rewrite", target_token=60, spans=False)
    assert default["text"] == result["text"]


def test_a_missing_or_wrong_rewrite_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"rewrite_model=.*no such file.*scripts/fetch-evaluator\.py"):
        abridge.compress(SAMPLE, method="rewrite", rate=0.3, rewrite_model=tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match=r"rewrite_model=.*junk\.gguf"):
        abridge.compress(SAMPLE, method="rewrite", rate=0.3, rewrite_model=junk)
    with pytest.raises(ValueError, match=r"rewrite_model= is the instruction model of method=\"rewrite\""):
        abridge.compress(SAMPLE, rate=0.3, rewrite_model=junk)
    # Without the default installed (an empty models directory), the error names the fetch step.
    monkeypatch.setenv("ABRIDGE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"not installed at .*scripts/fetch-evaluator\.py.*rewrite_model=PATH"):
        abridge.compress(SAMPLE, method="rewrite", rate=0.3)
