"""One request model: the same request through the CLI, the HTTP server and ``abridge.compress``
gives byte-identical text for every method (the prompt of examples/marisol)."""

import json
import re
import subprocess
import time
import urllib.request

import pytest

import abridge
from conftest import REPO, cli_binary

EXAMPLE = REPO / "examples" / "marisol"
DOCUMENTS = [d.strip() for d in (EXAMPLE / "documents.txt").read_text(encoding="utf-8").split("\n\n")]
QUESTION = (EXAMPLE / "question.txt").read_text(encoding="utf-8").strip()
# The tiny random token classifier of abridge-models' tests stands in for an LLMLingua-2
# checkpoint (none ships): its choices mean nothing, but every front end must make the same ones.
CLASSIFIER = REPO / "crates" / "abridge-models" / "tests" / "fixtures" / "tiny-bert-tokcls"
METHODS = ["auto", "fast", "longllmlingua", "llmlingua", "selective-context", "llmlingua2"]


@pytest.fixture(scope="module")
def cli():
    binary = cli_binary()
    if binary is None:
        pytest.skip("no abridge CLI binary built (set ABRIDGE_CLI)")
    return binary


@pytest.fixture(scope="module")
def server(cli, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    log = folder / "stderr.log"
    config = folder / "abridge.toml"
    config.write_text(f"[models]\nclassifier = {json.dumps(str(CLASSIFIER))}\n", encoding="utf-8")
    with open(log, "w") as stderr:
        process = subprocess.Popen([cli, "serve", "--port", "0", "--config", str(config)], stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while True:
            found = re.search(r"serving on (http://\S+) ", log.read_text())
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"abridge serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.parametrize("method", METHODS)
def test_the_cli_the_server_and_python_give_the_same_text(method, cli, server, tmp_path):
    files = []
    for i, document in enumerate(DOCUMENTS):
        path = tmp_path / f"d{i}.txt"
        path.write_text(document, encoding="utf-8")
        files += ["--context-file", str(path)]
    run = subprocess.run(
        [cli, "compress", *files, "--method", method, "--rate", "0.3", "--question", QUESTION, "--json",
         *(["--model", str(CLASSIFIER)] if method == "llmlingua2" else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    from_cli = json.loads(run.stdout)

    body = json.dumps({"context": DOCUMENTS, "question": QUESTION, "method": method, "rate": 0.3}).encode()
    request = urllib.request.Request(f"{server}/v1/compress", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        from_http = json.load(response)

    classifier = CLASSIFIER if method == "llmlingua2" else None
    from_python = abridge.compress(DOCUMENTS, question=QUESTION, method=method, rate=0.3, classifier=classifier)

    assert from_cli["text"] == from_http["text"] == from_python["text"]
    assert from_cli["compressed_tokens"] == from_http["compressed_tokens"] == from_python["compressed_tokens"]
    assert from_python["method"] == method


def test_auto_is_the_default_and_errors_name_the_keyword():
    result = abridge.compress(DOCUMENTS, question=QUESTION, rate=0.2)
    assert result["method"] == "auto"
    assert "1954" in result["text"] and "Kessler" in result["text"]
    with pytest.raises(ValueError, match=r"rate= must be in \(0, 1\].*rate=0\.5"):
        abridge.compress(DOCUMENTS, rate=2.0)
    with pytest.raises(ValueError, match=r"iterative_size= is an option of llmlingua, not auto"):
        abridge.compress(DOCUMENTS, iterative_size=100)


def test_an_unreachable_target_is_reported_and_spans_are_optional():
    # A target of one token: the question alone (protected) is over it.
    result = abridge.compress(
        "The harbour was rebuilt in 1889 after the storm.",
        question="When was the harbour rebuilt?",
        target_token=1,
        spans=False,
    )
    assert result["budget_unreachable"] is True
    assert "protected" in result["budget_unreachable_reason"]
    assert "spans" not in result and "source" not in result
    full = abridge.compress(DOCUMENTS, question=QUESTION, rate=0.5)
    assert full["budget_unreachable"] is False and full["budget_unreachable_reason"] is None
    assert full["spans"] and full["source"]
    with pytest.raises(TypeError, match="spans must be a bool"):
        abridge.compress(DOCUMENTS, spans="no")


def test_a_prompt_over_the_limit_is_refused_with_the_fix(compressor):
    over = "a " * (8 * 2**20) + "b"  # 16 MiB + 1 byte
    with pytest.raises(ValueError, match=r"16777217 bytes, over the 16 MiB .* split it into parts"):
        abridge.compress(over)
    with pytest.raises(ValueError, match=r"over the 16 MiB"):
        compressor.compress_prompt([over[:-1], "b"], rate=0.5)
    with pytest.raises(ValueError, match=r"iterative_size= must be at least 32"):
        compressor.compress_prompt(DOCUMENTS, rate=0.5, iterative_size=8)
