"""The server's parts load one at a time.

At start-up the code model, the attribution index and the workspace embedder load on three
threads. Importing CTranslate2/transformers, numba and torch on those threads at once hung
CPython's importer for good (a server stuck at "loading model"), so each part's imports and load
run under one lock: here the three loads are started together and must not overlap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from lsp_server.model_host import ModelHost
from lsp_server.provenance import ProvenanceHost
from lsp_server.settings import ModelSettings
from lsp_server.status import ComponentState

# long enough that three loads started together would overlap if nothing kept them apart
HOLD_S = 0.3


class Spans:
    """(name, start, end) of each recorded call, from any thread."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def wrap(self, name: str, fn):  # noqa: ANN001, ANN202 - any callable
        def recorded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = time.monotonic()
            try:
                result = fn(*args, **kwargs)
                time.sleep(HOLD_S)
                return result
            finally:
                with self._lock:
                    self.items.append((name, start, time.monotonic()))

        return recorded


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    from attribution import BuildConfig, build_index

    corpus = tmp_path / "corpus" / "demo"
    corpus.mkdir(parents=True)
    (corpus / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge")
    (corpus / "util.py").write_text("def add(a, b):\n    return a + b\n" * 20)
    build_index([tmp_path / "corpus"], tmp_path / "index", BuildConfig(workers=1, progress=False))
    return tmp_path / "index"


def test_model_index_and_embedder_load_one_at_a_time(
    default_model_dir: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    import engine.service
    from attribution.index import Index
    from lsp_server.embeddings import HFMeanPoolEmbedder, minilm_path

    spans = Spans()
    monkeypatch.setattr(engine.service, "load_model", spans.wrap("model", engine.service.load_model))
    monkeypatch.setattr(Index, "open", spans.wrap("index", Index.open))
    monkeypatch.setattr(
        transformers.AutoModel,
        "from_pretrained",
        spans.wrap("embedder", transformers.AutoModel.from_pretrained),
    )
    models = ModelHost(ComponentState())
    provenance = ProvenanceHost(ComponentState())
    embedders = []
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(fn) -> None:  # noqa: ANN001
        start.wait()
        try:
            fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(
            target=run, args=(lambda: models.load(ModelSettings(path=str(default_model_dir), threads=1)),)
        ),
        threading.Thread(target=run, args=(lambda: provenance.open(str(index_dir)),)),
        threading.Thread(
            target=run,
            args=(lambda: embedders.append(HFMeanPoolEmbedder(minilm_path(), name="minilm", threads=1)),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors
        assert models.state.loaded and provenance.state.loaded and embedders
        # the chat runtime (the model loaded again) follows on the host's worker, once the
        # imports are done: wait for it, then check the three start-up loads
        asyncio.run(models.run(lambda: None))
        assert sorted(name for name, _, _ in spans.items) == ["embedder", "index", "model", "model"]
        first: dict[str, tuple[str, float, float]] = {}
        for span in sorted(spans.items, key=lambda span: span[1]):
            first.setdefault(span[0], span)
        ordered = sorted(first.values(), key=lambda span: span[1])
        for (first, _, first_end), (then, then_start, _) in zip(ordered, ordered[1:], strict=False):
            assert then_start >= first_end, f"{then} began loading while {first} was still loading"
    finally:
        models.close()


def test_a_slow_remote_model_keeps_nobody_waiting() -> None:
    """A model behind a URL is only imported under the lock: while its server takes its time to
    answer, the attribution index and the embedder may load."""
    import http.server
    import json

    from lsp_server.imports import native_init

    answering = threading.Event()

    class SlowModels(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's handler name
            answering.set()
            time.sleep(1.5)
            body = json.dumps({"data": [{"id": "remote-coder"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowModels)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    models = ModelHost(ComponentState())
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    loading = threading.Thread(target=models.load, args=(ModelSettings(backend="http", url=url),))
    try:
        loading.start()
        assert answering.wait(30), "the model host never asked the server"
        waited = time.monotonic()
        with native_init():
            waited = time.monotonic() - waited
        loading.join(30)
        assert waited < 0.5, f"the lock was held for {waited:.1f} s while the remote server answered"
        assert models.state.loaded and models.service is not None
    finally:
        models.close()
        server.shutdown()


def test_starting_the_workspace_index_does_not_wait_for_a_loading_part(tmp_path: Path) -> None:
    """The server starts the workspace index on its event loop: that must not wait while another
    part holds the start-up lock (a model being converted holds it for minutes)."""
    from lsp_server.imports import native_init
    from lsp_server.workspace_index import WorkspaceIndex

    (tmp_path / "util.py").write_text("def add(a, b):\n    return a + b\n")
    held, release = threading.Event(), threading.Event()

    def load_for_a_while() -> None:
        with native_init():
            held.set()
            release.wait(10)

    loader = threading.Thread(target=load_for_a_while)
    loader.start()
    index = WorkspaceIndex([tmp_path], None)
    try:
        assert held.wait(5)
        started = time.monotonic()
        index.start()  # watching included
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
        loader.join()
        assert index.close()
