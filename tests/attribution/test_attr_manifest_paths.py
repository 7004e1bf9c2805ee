"""Index.open never follows a manifest's segment name out of the index folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attribution import Index
from attribution.errors import CorruptIndexError


@pytest.fixture
def copied(index_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(index_dir, out)
    return out


def _rename_first_segment(folder: Path, name: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["segments"][0]["name"] = name
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../index-elsewhere", "/etc", "a/../../x", "..", "", "sub/seg", 7])
def test_segment_names_leading_out_are_refused(copied: Path, name: object) -> None:
    _rename_first_segment(copied, name)  # type: ignore[arg-type]
    with pytest.raises(CorruptIndexError, match="outside the index folder"):
        Index.open(copied)


def test_a_segment_that_is_a_link_out_is_refused(copied: Path, tmp_path: Path) -> None:
    manifest = json.loads((copied / "manifest.json").read_text())
    first = manifest["segments"][0]["name"]
    moved = tmp_path / "elsewhere"
    shutil.move(copied / first, moved)
    (copied / first).symlink_to(moved)
    with pytest.raises(CorruptIndexError, match="outside the index folder"):
        Index.open(copied)


def test_the_unchanged_copy_still_opens(copied: Path) -> None:
    with Index.open(copied) as index:
        assert index.counts["files"] > 0
