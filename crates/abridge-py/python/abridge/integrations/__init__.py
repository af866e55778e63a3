"""Framework adapters. Each module imports its framework when it is imported, so ``abridge``
itself depends on neither:

- ``abridge.integrations.langchain.AbridgeCompressor`` (needs ``langchain-core``);
- ``abridge.integrations.llama_index.AbridgePostprocessor`` (needs ``llama-index-core``).
"""
