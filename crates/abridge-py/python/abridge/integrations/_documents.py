"""Shared by the adapters: compress documents for a query and map the results back.

Each document is wrapped in reference tags (``<#ref3#> text <#ref3#>``, as LangChain's
LLMLinguaCompressor does) and the tags are protected, so every surviving document comes back
attached to its input and its metadata. Documents the coarse filter drops, or that compress to nothing, are not returned.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

_REF = re.compile(r"<#ref(\d+)#>(.*?)<#ref\1#>", re.DOTALL)
_REF_PATTERN = r"<#ref\d+#>"


def compress_texts(
    compressor: Any,
    texts: Sequence[str],
    query: str,
    instruction: str,
    target_token: int,
    rank_method: str,
    additional_compress_kwargs: Optional[Dict[str, Any]] = None,
) -> List[Tuple[int, str]]:
    """(input index, compressed text) of the documents that survive, in the compressed order."""
    if not texts:
        return []
    contexts = [f"<#ref{i}#> {text.strip()} <#ref{i}#>" for i, text in enumerate(texts)]
    kwargs = dict(additional_compress_kwargs or {})
    patterns = list(kwargs.pop("protect_patterns", ())) + [_REF_PATTERN]
    result = compressor.compress_prompt(
        contexts,
        instruction=instruction,
        question=query,
        target_token=target_token,
        rank_method=rank_method,
        concate_question=False,
        protect_patterns=patterns,
        **kwargs,
    )
    out: List[Tuple[int, str]] = []
    for match in _REF.finditer(result["compressed_prompt"]):
        index, text = int(match.group(1)), match.group(2).strip()
        # A document compressed to nothing (the worst-ranked keep least) is left out too.
        if index < len(texts) and text:
            out.append((index, text))
    return out
