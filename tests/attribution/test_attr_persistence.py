"""Index folders: incremental builds, and refusal of missing, partial, corrupt or other-version folders."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from attribution import BuildConfig, Index, build_index
from attribution.errors import CorruptIndexError, IndexExistsError, IndexNotFoundError, IndexVersionError
from attribution.sources import iter_source_files

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def small_sources(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, names in ((first, ("heapq.py", "bisect.py")), (second, ("fnmatch.py", "colorsys.py"))):
        repo = folder / f"repo-{folder.name}"
        repo.mkdir(parents=True)
        (repo / "LICENSE").write_text((STDLIB / "LICENSE.txt").read_text())
        for name in names:
            shutil.copy(STDLIB / name, repo / name)
    return first, second


def _excerpt(path: Path) -> str:
    return "\n".join(path.read_text().splitlines()[20:50])


def test_incremental_build_adds_a_segment_without_rebuilding(tmp_path: Path, small_sources) -> None:
    first, second = small_sources
    out = tmp_path / "index"
    config = BuildConfig(workers=1, progress=False, extensions=[".py"])
    r1 = build_index([first], out, config)
    assert r1.files == 2
    seg0 = (out / "seg-00000" / "windows_hash.npy").stat().st_mtime_ns
    r2 = build_index([second], out, config)
    assert r2.files == 2
    assert (out / "seg-00000" / "windows_hash.npy").stat().st_mtime_ns == seg0  # untouched
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["segments"]] == ["seg-00000", "seg-00001"]
    assert manifest["counts"]["files"] == 4
    again = build_index([first, second], out, config)
    assert again.files == 0 and again.skipped.counts["already-indexed"] == 4
    with Index.open(out) as index:
        for path, repo in ((STDLIB / "heapq.py", "repo-first"), (STDLIB / "colorsys.py", "repo-second")):
            report = index.query(_excerpt(path))
            assert report.verdict == "copied"
            assert (report.matches[0].repo, report.matches[0].path) == (repo, path.name)


def test_refuses_a_folder_that_is_not_an_index(tmp_path: Path, small_sources) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(IndexExistsError):
        build_index([small_sources[0]], other, BuildConfig(workers=1, progress=False, extensions=[".py"]))
    assert (other / "todo.txt").read_text() == "keep me"
    with pytest.raises(IndexNotFoundError):
        Index.open(other)
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "missing")


@pytest.fixture
def built(tmp_path: Path, small_sources) -> Path:
    out = tmp_path / "index"
    build_index([small_sources[0]], out, BuildConfig(workers=1, progress=False, extensions=[".py"]))
    return out


def test_other_version_is_refused(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["version"] = 99
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexVersionError, match="version 99"):
        Index.open(built)
    with pytest.raises(IndexVersionError):
        build_index(
            [built.parent / "first"], built, BuildConfig(workers=1, progress=False, extensions=[".py"])
        )


@pytest.mark.parametrize(
    "damage",
    [
        "manifest-garbage",
        "truncated-array",
        "missing-array",
        "segment-meta",
        "sqlite-garbage",
        "wrong-format",
    ],
)
def test_corrupt_index_is_refused(built: Path, damage: str) -> None:
    seg = built / "seg-00000"
    if damage == "manifest-garbage":
        (built / "manifest.json").write_text("{not json")
    elif damage == "truncated-array":
        data = (seg / "windows_hash.npy").read_bytes()
        (seg / "windows_hash.npy").write_bytes(data[: len(data) // 2])
    elif damage == "missing-array":
        (seg / "raw_lsh_keys.npy").unlink()
    elif damage == "segment-meta":
        (seg / "segment.json").unlink()
    elif damage == "sqlite-garbage":
        size = (seg / "meta.sqlite").stat().st_size
        (seg / "meta.sqlite").write_bytes(b"\x13" * size)
    elif damage == "wrong-format":
        (built / "manifest.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(CorruptIndexError):
        index = Index.open(built)
        index.query(_excerpt(STDLIB / "heapq.py"))


def test_interrupted_build_leaves_no_index(tmp_path: Path, small_sources, monkeypatch) -> None:
    import attribution.build as build

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build.SegmentWriter, "finish", boom)
    out = tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        build_index([small_sources[0]], out, BuildConfig(workers=1, progress=False, extensions=[".py"]))
    assert not out.exists()
    assert not list(tmp_path.glob(".index.building-*"))


def test_arrays_load_without_pickle(built: Path) -> None:
    for path in (built / "seg-00000").rglob("*.npy"):
        np.load(path, allow_pickle=False, mmap_mode="r")
    assert not list(built.rglob("*.pkl")) and not list(built.rglob("*.pickle"))


def test_index_counts_match_sources(built: Path, small_sources) -> None:
    files = list(iter_source_files([small_sources[0]], extensions=[".py"]))
    with Index.open(built) as index:
        assert index.counts["files"] == len(files)


def test_index_of_nothing_opens_and_answers_original(tmp_path: Path) -> None:
    src = tmp_path / "src" / "repo"
    src.mkdir(parents=True)
    (src / "LICENSE").write_text("MIT License")
    result = build_index(
        [src.parent], tmp_path / "index", BuildConfig(workers=1, progress=False, extensions=[".py"])
    )
    assert result.files == 0 and result.skipped.counts["extension"] == 1
    with Index.open(tmp_path / "index") as index:
        assert index.query("def f():\n    return 1\n").verdict == "original"
