"""LangChain adapter: ``AbridgeCompressor``, a document compressor with the shape of
``langchain_community``'s ``LLMLinguaCompressor``.

    from abridge.integrations.langchain import AbridgeCompressor
    from langchain.retrievers import ContextualCompressionRetriever

    compressor = AbridgeCompressor(target_token=300)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

Needs ``langchain-core`` (``pip install langchain-core``); abridge itself does not depend on it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import Document
    from langchain_core.documents.compressor import BaseDocumentCompressor
    from pydantic import ConfigDict, Field
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "abridge.integrations.langchain needs langchain-core: pip install langchain-core"
    ) from e

from .._compressor import PromptCompressor
from ._documents import compress_texts

DEFAULT_INSTRUCTION = "Given this documents, please answer the final question"

# LLMLinguaCompressor's defaults: LongLLMLingua's RAG recipe.
DEFAULT_COMPRESS_KWARGS: Dict[str, Any] = {
    "condition_compare": True,
    "condition_in_question": "after",
    "context_budget": "+100",
    "reorder_context": "sort",
    "dynamic_context_compression_ratio": 0.4,
}


class AbridgeCompressor(BaseDocumentCompressor):
    """Compresses retrieved documents for the query (LongLLMLingua by default); each returned
    document keeps its input's metadata. Documents the coarse filter drops are left out, and
    the rest come in the compressor's order (most relevant first with ``reorder_context="sort"``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", protected_namespaces=())

    model_name: Optional[str] = None
    """None for abridge's default scoring model, or the path of a GGUF file."""
    device_map: str = "cpu"
    target_token: int = 300
    """Tokens of the compressed documents (cl100k_base)."""
    rank_method: str = "longllmlingua"
    instruction: str = DEFAULT_INSTRUCTION
    additional_compress_kwargs: Dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_COMPRESS_KWARGS))
    """More ``compress_prompt`` arguments."""
    compressor: Optional[Any] = None
    """A ``PromptCompressor`` to use; made from ``model_name`` when None."""

    def _prompt_compressor(self) -> PromptCompressor:
        if self.compressor is None:
            self.compressor = PromptCompressor(model_name=self.model_name, device_map=self.device_map)
        return self.compressor

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Optional[Callbacks] = None,
    ) -> Sequence[Document]:
        compressed = compress_texts(
            self._prompt_compressor(),
            [d.page_content for d in documents],
            query,
            self.instruction,
            self.target_token,
            self.rank_method,
            self.additional_compress_kwargs,
        )
        return [
            Document(page_content=text, metadata=dict(documents[i].metadata)) for i, text in compressed
        ]
