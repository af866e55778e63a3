"""LlamaIndex adapter: ``AbridgePostprocessor``, a node postprocessor with the shape of
``LongLLMLinguaPostprocessor``.

    from abridge.integrations.llama_index import AbridgePostprocessor

    postprocessor = AbridgePostprocessor(target_token=300)
    query_engine = index.as_query_engine(node_postprocessors=[postprocessor])

Needs ``llama-index-core`` (``pip install llama-index-core``); abridge itself does not depend on it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "abridge.integrations.llama_index needs llama-index-core: pip install llama-index-core"
    ) from e

from .._compressor import PromptCompressor
from ._documents import compress_texts

DEFAULT_INSTRUCTION = "Given the context, please answer the final question"


class AbridgePostprocessor(BaseNodePostprocessor):
    """Compresses the retrieved nodes for the query (LongLLMLingua by default). Each node is
    compressed as its own document and returned with its metadata and score; nodes the coarse
    filter drops are left out.
    """

    model_name: Optional[str] = Field(default=None, description="None for the default model, or a GGUF path.")
    instruction_str: str = Field(default=DEFAULT_INSTRUCTION, description="Instruction for the LLM.")
    target_token: int = Field(default=-1, description="Tokens of the compressed nodes; -1 uses rate 0.5.")
    rank_method: str = Field(default="longllmlingua", description="How nodes are ranked for the query.")
    additional_compress_kwargs: Dict[str, Any] = Field(default_factory=dict, description="More compress_prompt arguments.")

    _compressor: Any = PrivateAttr()

    def __init__(
        self,
        model_name: Optional[str] = None,
        device_map: str = "cpu",
        instruction_str: str = DEFAULT_INSTRUCTION,
        target_token: int = -1,
        rank_method: str = "longllmlingua",
        additional_compress_kwargs: Optional[Dict[str, Any]] = None,
        compressor: Optional[PromptCompressor] = None,
    ) -> None:
        super().__init__(
            model_name=model_name,
            instruction_str=instruction_str,
            target_token=target_token,
            rank_method=rank_method,
            additional_compress_kwargs=dict(additional_compress_kwargs or {}),
        )
        self._compressor = compressor or PromptCompressor(model_name=model_name, device_map=device_map)

    @classmethod
    def class_name(cls) -> str:
        return "AbridgePostprocessor"

    def _postprocess_nodes(
        self,
        nodes: List[NodeWithScore],
        query_bundle: Optional[QueryBundle] = None,
    ) -> List[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("AbridgePostprocessor needs the query (query_bundle)")
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        compressed = compress_texts(
            self._compressor,
            texts,
            query_bundle.query_str,
            self.instruction_str,
            self.target_token,
            self.rank_method,
            self.additional_compress_kwargs,
        )
        out: List[NodeWithScore] = []
        for i, text in compressed:
            original = nodes[i]
            node = TextNode(
                text=text,
                metadata=dict(original.node.metadata),
                excluded_embed_metadata_keys=list(original.node.excluded_embed_metadata_keys),
                excluded_llm_metadata_keys=list(original.node.excluded_llm_metadata_keys),
            )
            out.append(NodeWithScore(node=node, score=original.score))
        return out
