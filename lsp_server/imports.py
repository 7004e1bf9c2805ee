"""Heavy libraries imported and initialised by one thread at a time.

At start-up the server brings up three parts on three threads: the code model (CTranslate2,
`transformers`), the attribution index (numba) and the workspace embedder (torch,
`transformers`). Each imports hundreds of modules, and CPython's importer is not safe against
that (python/cpython#83065, fixed only in 3.14): a server was seen to hang for good with one
thread importing `torch`, one `numba` and one `lsp_server.imports`, all waiting on import locks
held by each other (both `torch` and `numba` import `timeit`). `transformers` also resolves its
names lazily, and two threads importing it at once can see a half-initialised module ("module
'transformers' has no attribute 'AutoConfig'").

So each part's import and load runs inside :func:`native_init`, one part at a time; what a part
does once loaded (generation, embedding, index lookups) runs in parallel as before.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["native_init", "import_transformers", "import_heavy"]

_INIT_LOCK = threading.RLock()


@contextmanager
def native_init() -> Iterator[None]:
    """Hold the process-wide lock under which heavy libraries are imported and models loaded."""
    with _INIT_LOCK:
        yield


def import_heavy(name: str) -> ModuleType:
    """``import name`` under the lock, unless it is already imported (then no wait at all)."""
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        return module
    with native_init():
        return importlib.import_module(name)


def import_transformers() -> None:
    """Import `transformers` and resolve the names the server's threads use, once, under the lock."""
    with native_init():
        import transformers

        for name in ("AutoConfig", "AutoModel", "AutoTokenizer", "PreTrainedTokenizerFast"):
            getattr(transformers, name)
