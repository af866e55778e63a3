"""The drop-in contract of abridge.PromptCompressor.compress_prompt, on the real default model."""

import json
import re
import subprocess
import threading
import warnings

import pytest

from conftest import REPO, cli_binary

LLMLINGUA_KEYS = {"compressed_prompt", "origin_tokens", "compressed_tokens", "ratio", "rate", "saving"}


def test_readme_example_switches_the_import(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    # Copied verbatim from the README's "Python" section.
    # from llmlingua import PromptCompressor
    from abridge import PromptCompressor

    llm_lingua = PromptCompressor()
    prompt = open("examples/sample.txt").read()
    compressed_prompt = llm_lingua.compress_prompt(prompt, instruction="", question="", target_token=100)
    print(compressed_prompt["compressed_prompt"], compressed_prompt["ratio"])
    # End of the README's code.
    assert LLMLINGUA_KEYS <= set(compressed_prompt)
    assert compressed_prompt["ratio"] in capsys.readouterr().out
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'compressed_prompt = llm_lingua.compress_prompt(prompt, instruction="", question="", target_token=100)' in readme


def test_result_keys_types_and_llmlingua_strings(compressor, sample):
    result = compressor.compress_prompt(sample, rate=0.5)
    assert LLMLINGUA_KEYS <= set(result)
    assert isinstance(result["compressed_prompt"], str) and result["compressed_prompt"]
    assert isinstance(result["origin_tokens"], int) and isinstance(result["compressed_tokens"], int)
    assert 0 < result["compressed_tokens"] < result["origin_tokens"]
    assert re.fullmatch(r"\d+\.\dx", result["ratio"])
    assert re.fullmatch(r"\d+\.\d%", result["rate"])
    assert re.fullmatch(r", Saving \$\d+\.\d in GPT-4\.", result["saving"])
    ratio = result["origin_tokens"] / result["compressed_tokens"]
    assert result["ratio"] == f"{ratio:.1f}x"
    assert result["rate"] == f"{100 / ratio:.1f}%"
    assert result["ratio_value"] == pytest.approx(ratio)
    assert result["rate_value"] == pytest.approx(1 / ratio)
    assert result["tokenizer"] == "cl100k_base"
    assert result["method"] == "llmlingua"
    # Budget met in cl100k tokens, within a few percent.
    assert abs(result["compressed_tokens"] - result["origin_tokens"] * 0.5) <= 0.05 * result["origin_tokens"] + 2
    # The label map covers the source, in order, with character offsets.
    spans = result["label_map"]
    assert spans[0]["start"] == 0 and spans[-1]["end"] == len(result["source"])
    for a, b in zip(spans, spans[1:]):
        assert a["end"] == b["start"]
    for span in spans:
        assert result["source"][span["start"]:span["end"]] == span["text"]
    assert {type(s["kept"]) for s in spans} == {bool}


def test_call_is_compress_prompt(compressor, sample):
    assert compressor(sample, rate=0.4)["compressed_prompt"] == compressor.compress_prompt(sample, rate=0.4)["compressed_prompt"]


def test_context_str_and_list(compressor, sample, documents):
    as_str = compressor.compress_prompt(sample, rate=0.5)
    as_list = compressor.compress_prompt([sample], rate=0.5)
    assert as_str["compressed_prompt"] == as_list["compressed_prompt"]
    several = compressor.compress_prompt(documents, rate=0.6)
    assert several["compressed_prompt"]
    assert several["origin_tokens"] > several["compressed_tokens"]


def test_instruction_and_question_are_kept_in_place(compressor, documents):
    instruction = "Answer the question from the documents."
    question = "Question: how tall is the emperor penguin?"
    result = compressor.compress_prompt(documents, instruction=instruction, question=question, rate=0.5)
    assert result["compressed_prompt"].startswith(instruction + "\n\n")
    assert result["compressed_prompt"].endswith("\n\n" + question)
    no_question = compressor.compress_prompt(
        documents, instruction=instruction, question=question, rate=0.5, concate_question=False
    )
    assert question not in no_question["compressed_prompt"]
    assert no_question["origin_tokens"] == result["origin_tokens"]


def test_target_token_budgets_the_contexts(compressor, sample):
    instruction = "Summarise the history of the town below in two sentences."
    result = compressor.compress_prompt(sample, instruction=instruction, target_token=60)
    context_tokens = result["compressed_tokens"] - compressor.count_tokens(instruction)
    assert 50 <= context_tokens <= 66, result
    assert result["target_tokens"] >= 60


def test_force_tokens_and_digits_are_kept(compressor, sample):
    result = compressor.compress_prompt(sample, rate=0.2, force_tokens=["Vellmouth", "herring"], force_reserve_digit=True)
    for word in ["Vellmouth", "herring", "1871", "1950s."]:
        assert word in result["compressed_prompt"], word


def test_return_word_label(compressor):
    result = compressor.compress_prompt("one two three four five six", rate=0.5, return_word_label=True)
    words = result["fn_labeled_original_prompt"].split("\t\t|\t\t")
    assert [w.split(" ")[0] for w in words] == ["one", "two", "three", "four", "five", "six"]
    assert {w.split(" ")[1] for w in words} <= {"0", "1"}


def test_unknown_keywords_and_wrong_types_raise_type_error(compressor, sample):
    with pytest.raises(TypeError):
        compressor.compress_prompt(sample, ratio=0.5)  # DOCUMENT.md's old name
    with pytest.raises(TypeError):
        compressor.compress_prompt(sample, not_an_option=True)
    for kwargs in [{"rate": "0.5"}, {"target_token": "100"}, {"force_tokens": "abc"},
                   {"use_context_level_filter": "yes"}, {"instruction": None}, {"force_context_ids": 3}]:
        with pytest.raises(TypeError):
            compressor.compress_prompt(sample, **kwargs)
    with pytest.raises(TypeError):
        compressor.compress_prompt(42)
    with pytest.raises(TypeError):
        compressor.compress_prompt([sample, 3])


@pytest.mark.parametrize("rate", [0, 0.0, -0.1, 1.01, 2, float("nan")])
def test_rate_outside_0_1_raises_value_error(compressor, sample, rate):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        compressor.compress_prompt(sample, rate=rate)


def test_bad_values_raise_value_error_with_the_fix(compressor, sample, documents):
    cases = [
        ({"target_token": 0}, "target_token"),
        ({"target_token": -7}, "target_token"),
        ({"rank_method": "openai"}, "not available"),
        ({"rank_method": "nonsense"}, "unknown rank_method"),
        ({"context_budget": "import os"}, "context_budget"),
        ({"condition_in_question": "sideways"}, "condition_in_question"),
        ({"reorder_context": "random"}, "reorder"),
        ({"drop_consecutive": True}, "drop_consecutive"),
        ({"context_level_rate": 0.5}, "LLMLingua-2"),
        ({"force_context_ids": [9]}, "force_context_ids= names context 9"),
        ({"unit": "paragraph"}, "unknown unit"),
        ({"force_tokens": [""]}, "force token 1 is empty"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            compressor.compress_prompt(documents, **kwargs)
    with pytest.raises(ValueError, match="question"):
        compressor.compress_prompt(documents, rank_method="longllmlingua")
    with pytest.raises(ValueError, match="nothing to compress"):
        compressor.compress_prompt("")
    with pytest.raises(ValueError, match="abridge"):
        compressor.compress_prompt("a <abridge rate=7>broken</abridge> tag")


def test_without_the_token_level_filter_whole_contexts_are_kept_or_dropped(compressor, documents):
    result = compressor.compress_prompt(
        documents, rate=0.4, context_budget="+0", use_token_level_filter=False
    )
    kept = result["compressed_prompt"]
    # Every document is either there verbatim or gone; at least one of each at this rate.
    present = [d in kept for d in documents]
    assert any(present) and not all(present), present
    assert kept == "\n\n".join(d for d, p in zip(documents, present) if p)


def test_longllmlingua_options_select_longllmlingua(compressor, documents):
    question = "How tall can an emperor penguin be?"
    result = compressor.compress_prompt(
        documents,
        question=question,
        target_token=60,
        rank_method="longllmlingua",
        condition_compare=True,
        condition_in_question="after",
        reorder_context="sort",
        dynamic_context_compression_ratio=0.4,
        context_budget="+100",
    )
    assert result["method"] == "longllmlingua"
    assert result["compressed_prompt"].endswith(question)
    # The penguin document ranks first.
    assert "penguin" in result["compressed_prompt"].split("\n\n")[0].lower()
    for rank_method in ["bm25", "gzip"]:
        assert compressor.compress_prompt(documents, question=question, rate=0.5, rank_method=rank_method)["method"] == "longllmlingua"


def test_structured_tags(compressor, sample):
    kept = "The Vellmouth quay is listed as a monument of national importance."
    context = (
        f"<llmlingua, compress=False>{kept}</llmlingua> "
        f"<llmlingua, rate=0.3>{sample.split(chr(10))[0]}</llmlingua>"
        f"<llmlingua>Untagged-like text goes by the global rate.</llmlingua>"
    )
    result = compressor.structured_compress_prompt([context], rate=0.5)
    assert result["compressed_prompt"].startswith(kept)
    assert "<llmlingua" not in result["compressed_prompt"] and "abridge" not in result["compressed_prompt"]
    with pytest.raises(ValueError, match="malformed"):
        compressor.structured_compress_prompt(["<llmlingua, rate=0.3>unclosed"])


def test_compress_json(compressor):
    data = {
        "id": 42,
        "title": "Vellmouth harbour",
        "summary": "The harbour town of Vellmouth grew up around a single stone quay built by fishermen "
                   "in the thirteenth century, and lived on herring for most of its history.",
        "tags": ["fishing", "tourism"],
    }
    config = {
        "id": {"compress": False},
        "title": {"compress": False},
        "summary": {"rate": 0.4, "compress": True},
        "tags": {"compress": False},
    }
    result = compressor.compress_json(data, config)
    out = result["compressed_prompt"]
    assert isinstance(out, dict)
    assert out["id"] == 42 and out["title"] == data["title"] and out["tags"] == data["tags"]
    assert len(out["summary"]) < len(data["summary"])
    with pytest.raises(ValueError, match="one entry per top-level key"):
        compressor.compress_json(data, {"id": {}})


def test_recover(compressor):
    original = "The harbour town of Vellmouth grew up around a single stone quay built by fishermen."
    compressed = "harbour town Vellmouth grew single stone quay fishermen."
    response = "It says Vellmouth grew single stone quay over time."
    recovered = compressor.recover(original, compressed, response)
    assert "Vellmouth grew up around a single stone quay" in recovered


def test_constructor_contract():
    from abridge import PromptCompressor

    with pytest.raises(ValueError, match="model_name=DIR"):
        PromptCompressor(use_llmlingua2=True)
    with pytest.raises(NotImplementedError, match="SecurityLingua"):
        PromptCompressor(use_slingua=True)
    with pytest.raises(ValueError, match="hub"):
        PromptCompressor("NousResearch/Llama-2-7b-hf")
    with pytest.raises(FileNotFoundError):
        PromptCompressor("/nonexistent/model.gguf")
    with pytest.raises(TypeError):
        PromptCompressor(model_name=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compressor = PromptCompressor(device_map="cuda")
    assert any("CPU" in str(w.message) for w in caught)
    assert compressor.device_map == "cpu"


def test_int8_weights_compress_close_to_f32(compressor, sample):
    from abridge import PromptCompressor

    with pytest.raises(ValueError, match=r"model_config\['weights'\].*int8-a16"):
        PromptCompressor(model_config={"weights": "int4"})
    with pytest.raises(ValueError, match="low_memory"):
        PromptCompressor(model_config={"weights": "int8", "low_memory": True})
    with pytest.raises(TypeError, match="weights"):
        PromptCompressor(model_config={"weights": 8})
    int8 = PromptCompressor(model_config={"weights": "int8-a16"})
    exact = compressor.compress_prompt(sample, rate=0.5)
    approximate = int8.compress_prompt(sample, rate=0.5)
    # Surprisals within about 0.015 nats: the same budget, and nearly the same words kept.
    assert abs(approximate["compressed_tokens"] - exact["compressed_tokens"]) <= 3
    kept = lambda r: [s["kept"] for s in r["label_map"]]
    agree = sum(a == b for a, b in zip(kept(exact), kept(approximate))) / len(kept(exact))
    assert len(kept(exact)) == len(kept(approximate)) and agree >= 0.9


def test_threads_give_the_serial_results(compressor, sample, documents):
    jobs = [(sample, 0.3), (sample, 0.6), (documents, 0.5), ([sample, documents[0]], 0.4)] * 2
    serial = [compressor.compress_prompt(c, rate=r)["compressed_prompt"] for c, r in jobs]
    results = [None] * len(jobs)

    def work(i):
        c, r = jobs[i]
        results[i] = compressor.compress_prompt(c, rate=r)["compressed_prompt"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == serial
    batch = compressor.compress_prompts([sample, documents], rate=0.5)
    assert [b["compressed_prompt"] for b in batch] == [
        compressor.compress_prompt(sample, rate=0.5)["compressed_prompt"],
        compressor.compress_prompt(documents, rate=0.5)["compressed_prompt"],
    ]
    with pytest.raises(ValueError, match="prompt 1"):
        compressor.compress_prompts([sample, ""], rate=0.5)
    with pytest.raises(TypeError):
        compressor.compress_prompts(sample)


def test_same_output_as_the_cli(compressor, sample, tmp_path):
    cli = cli_binary()
    if cli is None:
        pytest.skip("no abridge CLI binary built (set ABRIDGE_CLI)")
    path = tmp_path / "in.txt"
    path.write_text(sample, encoding="utf-8")
    for rate in ["0.3", "0.5"]:
        run = subprocess.run([cli, "compress", str(path), "--method", "llmlingua", "--rate", rate, "--json"], capture_output=True, text=True, check=True)
        expected = json.loads(run.stdout)
        result = compressor.compress_prompt(sample, rate=float(rate))
        assert result["compressed_prompt"] == expected["text"]
        assert result["origin_tokens"] == expected["origin_tokens"]
        assert result["compressed_tokens"] == expected["compressed_tokens"]
