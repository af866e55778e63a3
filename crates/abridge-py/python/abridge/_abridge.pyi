"""Type stubs for the native module (crates/abridge-py/src/lib.rs)."""

import os
import pathlib
from typing import Any, Dict, List, Optional, Union

__version__: str

class Engine:
    """The loaded models (scoring LM or token classifier, target-LLM token counter); shared,
    thread-safe."""

    def __init__(
        self,
        model_path: Optional[Union[str, os.PathLike[str]]] = None,
        low_memory: bool = False,
        target_tokenizer: str = "cl100k_base",
        classifier: bool = False,
        weights: str = "f32",
    ) -> None: ...
    def compress(self, options: Dict[str, Any]) -> Dict[str, Any]: ...
    def compress_many(self, options: List[Dict[str, Any]]) -> List[Dict[str, Any]]: ...
    def count_tokens(self, text: str) -> int: ...
    @property
    def tokenizer(self) -> str: ...
    @property
    def model_path(self) -> pathlib.Path: ...

def recover(original: str, compressed: str, response: str) -> str: ...
def compress(
    contexts: List[str],
    instruction: str,
    question: str,
    options: Dict[str, Any],
    classifier_path: Optional[Union[str, os.PathLike[str]]] = None,
    spans: bool = True,
    rewrite_model_path: Optional[Union[str, os.PathLike[str]]] = None,
) -> Dict[str, Any]: ...
def fetch_default_model() -> pathlib.Path: ...
def models_dir() -> pathlib.Path: ...
def default_model_installed() -> bool: ...
def is_classifier_folder(path: Union[str, os.PathLike[str]]) -> bool: ...
