"""abridge: prompt compression for LLMs, in Rust; a drop-in for ``llmlingua.PromptCompressor``.

    from abridge import PromptCompressor      # was: from llmlingua import PromptCompressor

    llm_lingua = PromptCompressor()            # the packaged SmolLM2-135M model, on the CPU
    result = llm_lingua.compress_prompt(prompt, instruction="", question="", target_token=200)
    result["compressed_prompt"], result["ratio"]   # "...", "11.2x"

abridge's own entry point, with the same options as the CLI and the server and ``auto`` as its
default method (question-aware when given a ``question``)::

    import abridge
    abridge.compress(documents, question="When was the ferry built?", rate=0.2)["text"]

Framework adapters (optional; import them to use them): ``abridge.integrations.langchain``
(``AbridgeCompressor``, a LangChain document compressor) and ``abridge.integrations.llama_index``
(``AbridgePostprocessor``, a LlamaIndex node postprocessor).
"""

from ._abridge import __version__, default_model_installed, fetch_default_model, models_dir
from ._compress import compress
from ._compressor import PromptCompressor, recover

__all__ = [
    "compress",
    "PromptCompressor",
    "recover",
    "fetch_default_model",
    "default_model_installed",
    "models_dir",
    "__version__",
]
