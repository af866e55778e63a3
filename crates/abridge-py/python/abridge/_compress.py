"""``abridge.compress``: abridge's own entry point, on the request model the CLI and the server
share (``method="auto"`` by default). Arguments are checked here; the options are the library's
``CompressionOptions`` (LLMLingua's names), validated in Rust, where errors name the keyword.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from . import _abridge

__all__ = ["compress"]


def compress(
    context: Union[str, Sequence[str]],
    *,
    instruction: str = "",
    question: str = "",
    method: str = "auto",
    classifier: Optional[Union[str, "os.PathLike[str]"]] = None,
    rewrite_model: Optional[Union[str, "os.PathLike[str]"]] = None,
    spans: bool = True,
    **options: Any,
) -> Dict[str, Any]:
    """Compresses ``context`` (a text, or a list of documents) between ``instruction`` and
    ``question``, which are kept verbatim.

    ``method``: ``"auto"`` (abridge-fast's word selection, question-aware with a ``question``,
    dates, numbers and names kept whole), ``"fast"``, ``"longllmlingua"``, ``"llmlingua"``,
    ``"selective-context"``, ``"llmlingua2"`` (with ``classifier=DIR``) or ``"rewrite"`` (the
    ``auto`` extract rewritten by a local instruction model: ``rewrite_model=PATH``, a chat GGUF,
    default the Qwen2.5-Coder-0.5B-Instruct that ``scripts/fetch-evaluator.py`` installs; the
    result's ``rewrite`` holds the extract, the rewrite, its fill and the ``unsupported_spans``
    the faithfulness guard repaired). ``options`` are the
    server's JSON fields and the CLI's flags: ``rate``, ``target_token``, ``threshold``, ``unit``,
    ``force_tokens``, ``rank_method``, ... (docs/SERVER.md). The models a method reads are loaded
    on first use and kept. Returns the result as a dict: ``text``, ``origin_tokens``,
    ``compressed_tokens``, ``ratio``, ``rate``, ``target_tokens``,
    ``budget_unreachable`` (and ``budget_unreachable_reason`` when the target could not be met),
    ``source``, ``spans``, ... ``spans=False`` leaves out ``source`` and ``spans`` (most of a long
    input's result; the CLI's ``--no-spans``).
    """
    if isinstance(context, str):
        contexts = [context]
    elif isinstance(context, (list, tuple)) and all(isinstance(c, str) for c in context):
        contexts = list(context)
    else:
        raise TypeError(f"context must be a str or a list of str, got {type(context).__name__}")
    for name, value in (("instruction", instruction), ("question", question), ("method", method)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not isinstance(spans, bool):
        raise TypeError(f"spans must be a bool, got {type(spans).__name__}")
    options["method"] = method
    classifier_path = None if classifier is None else os.fspath(classifier)
    rewrite_model_path = None if rewrite_model is None else os.fspath(rewrite_model)
    return _abridge.compress(
        contexts, instruction, question, options, classifier_path, spans, rewrite_model_path
    )
