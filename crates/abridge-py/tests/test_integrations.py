"""The LangChain and LlamaIndex adapters, against the real frameworks (skipped when absent)."""

import subprocess
import sys

import pytest

QUESTION = "How tall can an emperor penguin be?"


def test_core_package_does_not_import_the_frameworks():
    code = "import abridge, sys; print(any(m.split('.')[0] in ('langchain_core', 'llama_index') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_langchain_document_compressor(compressor, documents):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.documents.compressor import BaseDocumentCompressor

    from abridge.integrations.langchain import AbridgeCompressor

    docs = [Document(page_content=text, metadata={"source": f"doc{i}"}) for i, text in enumerate(documents)]
    lc = AbridgeCompressor(compressor=compressor, target_token=80)
    assert isinstance(lc, BaseDocumentCompressor)
    out = lc.compress_documents(docs, QUESTION)
    assert out, "nothing survived"
    sources = [d.metadata["source"] for d in out]
    assert len(set(sources)) == len(sources)
    assert sources[0] == "doc3"  # the penguin document ranks first (reorder_context="sort")
    for d in out:
        assert "<#ref" not in d.page_content and d.page_content
        assert QUESTION not in d.page_content
    with pytest.raises(Exception):
        AbridgeCompressor(compressor=compressor, not_a_field=1)


def test_llama_index_node_postprocessor(compressor, documents):
    pytest.importorskip("llama_index.core")
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from abridge.integrations.llama_index import AbridgePostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, metadata={"source": f"doc{i}"}), score=1.0 - i / 10)
             for i, t in enumerate(documents)]
    post = AbridgePostprocessor(compressor=compressor, target_token=80)
    assert isinstance(post, BaseNodePostprocessor)
    out = post.postprocess_nodes(nodes, query_bundle=QueryBundle(QUESTION))
    assert out
    by_source = {n.node.metadata["source"]: n for n in out}
    assert "doc3" in by_source
    assert by_source["doc3"].score == pytest.approx(0.7)
    assert all(len(n.node.get_content()) > 0 for n in out)
    with pytest.raises(ValueError, match="query"):
        post.postprocess_nodes(nodes)
