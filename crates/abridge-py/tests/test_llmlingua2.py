"""LLMLingua-2 through PromptCompressor(model_name=DIR, use_llmlingua2=True), on the tiny random
classifiers of abridge-models: outputs mean nothing but are deterministic, so the contract
(arguments, result keys, budget, protected tokens, errors) can be checked."""

import pytest

from conftest import REPO

FIXTURES = REPO / "crates" / "abridge-models" / "tests" / "fixtures"
BERT = str(FIXTURES / "tiny-bert-tokcls")
XLMR = str(FIXTURES / "tiny-xlmr-tokcls")
LLMLINGUA2_KEYS = {
    "compressed_prompt", "compressed_prompt_list", "origin_tokens", "compressed_tokens", "ratio", "rate", "saving",
}


@pytest.fixture(scope="module")
def llmlingua2():
    from abridge import PromptCompressor

    return PromptCompressor(model_name=BERT, use_llmlingua2=True)


def test_result_keys_and_the_rate(llmlingua2, sample):
    result = llmlingua2.compress_prompt(sample, rate=0.4, force_tokens=["\n", "?"])
    assert LLMLINGUA2_KEYS <= set(result)
    assert result["method"] == "llmlingua2"
    assert result["compressed_prompt_list"] == [result["compressed_prompt"].strip()]
    target = result["target_tokens"]
    assert abs(result["compressed_tokens"] - target) <= max(1, 0.03 * target)
    assert all(0.0 <= span["score"] <= 1.0 for span in result["label_map"] if span["score"] is not None)


def test_target_token_threshold_and_word_labels(llmlingua2, sample):
    result = llmlingua2.compress_prompt(sample, target_token=60)
    assert abs(result["compressed_tokens"] - 60) <= 2
    everything = llmlingua2.compress_prompt(sample, threshold=0.0)
    assert everything["compressed_prompt"] == sample.strip() or everything["compressed_prompt"] == sample
    strict = llmlingua2.compress_prompt(sample, threshold=0.9)
    assert strict["compressed_tokens"] < everything["compressed_tokens"]
    labeled = llmlingua2.compress_prompt(
        "The harbour was built in 1820 by fishermen.", rate=0.5, return_word_label=True,
        word_sep="|", label_sep="/", force_reserve_digit=True,
    )
    words = labeled["fn_labeled_original_prompt"].split("|")
    assert [w.rsplit("/", 1)[0] for w in words] == "The harbour was built in 1820 by fishermen.".split()
    assert "1820/1" in words
    assert all(w.rsplit("/", 1)[1] in ("0", "1") for w in words)


def test_several_contexts_the_context_filter_and_drop_consecutive(documents):
    from abridge import PromptCompressor

    compressor = PromptCompressor(model_name=XLMR, use_llmlingua2=True)
    result = compressor.compress_prompt(
        documents, rate=0.5, target_context=2, force_context_ids=[3], use_context_level_filter=True,
    )
    assert len(result["compressed_prompt_list"]) == 2
    assert result["compressed_prompt"] == "\n\n".join(result["compressed_prompt_list"])
    repeated = compressor.compress_prompt(
        "alpha | | | beta", rate=1.0, force_tokens=["|"], drop_consecutive=True,
    )
    assert repeated["compressed_prompt"] == "alpha | beta"
    compat = compressor.compress_prompt(documents, rate=0.5, use_context_level_filter=False, llmlingua2_compat=True)
    assert compat["compressed_prompt"]
    question = compressor.compress_prompt(documents[:2], rate=0.6, question="How high is Kilimanjaro?")
    assert question["compressed_prompt"].endswith("How high is Kilimanjaro?")


def test_errors_name_the_fix(llmlingua2):
    from abridge import PromptCompressor

    with pytest.raises(ValueError, match="model_name=DIR"):
        PromptCompressor(use_llmlingua2=True)
    with pytest.raises(FileNotFoundError, match="token-classification model not found"):
        PromptCompressor(model_name="/nonexistent/classifier", use_llmlingua2=True)
    with pytest.raises(ValueError, match="use_llmlingua2=True"):
        PromptCompressor(model_name=BERT)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        llmlingua2.compress_prompt("some text here", threshold=1.5)
    with pytest.raises(ValueError, match="rate"):
        llmlingua2.compress_prompt("some text here", rate=0.0)
    with pytest.raises(ValueError, match="context_level_rate"):
        llmlingua2.compress_prompt(["a b", "c d"], context_level_rate=2.0)
    with pytest.raises(ValueError, match="token_to_word"):
        llmlingua2.compress_prompt("some text", token_to_word="first")
    with pytest.raises(TypeError):
        llmlingua2.compress_prompt("some text", drop_consecutive="yes")
    with pytest.raises(ValueError):
        llmlingua2.compress_prompt("")
