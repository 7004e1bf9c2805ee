"""Heavy libraries imported by one thread at a time.

The server loads the model and the workspace embedder on different threads, and both import
`transformers` (the CTranslate2 converter and the tokenizer on one side, the encoder on the
other). `transformers` resolves its names lazily; two threads importing it at once can see a
half-initialised module ("module 'transformers' has no attribute 'AutoConfig'"). Every thread
of the server goes through `import_transformers()` first.
"""

from __future__ import annotations

import threading

_IMPORT_LOCK = threading.Lock()


def import_transformers() -> None:
    """Import `transformers` and resolve the names the server's threads use, once, under a lock."""
    with _IMPORT_LOCK:
        import transformers

        for name in ("AutoConfig", "AutoModel", "AutoTokenizer", "PreTrainedTokenizerFast"):
            getattr(transformers, name)
