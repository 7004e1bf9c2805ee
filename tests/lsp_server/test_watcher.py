"""The workspace watcher places inotify watches only outside ignored folders, and still sees changes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from inotify_watches import folders_below, watched_inodes

from lsp_server.watcher import FolderWatcher
from lsp_server.workspace_index import IndexConfig, WorkspaceIndex, is_ignored_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

EXCLUDED = ("node_modules", ".git", "env-folder", "build")


def make_tree(root: Path) -> Path:
    for rel in (
        "src/pkg/sub",
        "docs",
        "node_modules/left-pad/lib/deep",
        ".git/objects/ab",
        "env-folder/lib/python3.11/site-packages/requests",  # a virtualenv: pyvenv.cfg below
        "build/lib/pkg",
        "src/pkg/node_modules/inner/lib",
    ):
        (root / rel).mkdir(parents=True)
    (root / "env-folder" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "src" / "pkg" / "geometry.py").write_text("def circle_area(r):\n    return 3.14 * r * r\n")
    return root


def excluded_folders(root: Path) -> list[Path]:
    return [p for p in folders_below(root) if any(part in EXCLUDED for part in p.relative_to(root).parts)]


def wait_until(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_no_watch_inside_an_excluded_folder_and_changes_elsewhere_are_seen(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ws")
    changed: list[str] = []
    watcher = FolderWatcher([root], changed.append, skip=is_ignored_dir)
    watcher.start()
    try:
        kept = [p for p in folders_below(root) if p not in excluded_folders(root)]
        inodes = watched_inodes()
        assert {p.stat().st_ino for p in kept} <= inodes  # every other folder is watched
        assert not {p.stat().st_ino for p in excluded_folders(root)} & inodes
        assert sorted(watcher.watched) == sorted(map(str, kept))

        # folders created later: a normal one is watched (and its files seen), ignored ones are not
        (root / "src" / "new" / "deeper").mkdir(parents=True)
        (root / "src" / "new" / "node_modules" / "dep").mkdir(parents=True)
        (root / "node_modules" / "fresh").mkdir()
        assert wait_until(lambda: str(root / "src" / "new" / "deeper") in watcher.watched)
        (root / "src" / "new" / "deeper" / "util.py").write_text("x = 1\n")
        assert wait_until(lambda: str(root / "src" / "new" / "deeper" / "util.py") in changed)
        (root / "docs" / "notes.md").write_text("# notes\n")
        assert wait_until(lambda: str(root / "docs" / "notes.md") in changed)
        time.sleep(0.2)
        inodes = watched_inodes()
        assert not {p.stat().st_ino for p in excluded_folders(root)} & inodes
        assert (root / "src" / "new" / "deeper").stat().st_ino in inodes

        # a folder moved in is watched at its new place, and its old place is forgotten
        (root / "src" / "new").rename(root / "docs" / "moved")
        assert wait_until(lambda: str(root / "docs" / "moved" / "deeper") in watcher.watched)
        assert not any(w.startswith(str(root / "src" / "new")) for w in watcher.watched)
        (root / "docs" / "moved" / "deeper" / "later.py").write_text("y = 2\n")
        assert wait_until(lambda: str(root / "docs" / "moved" / "deeper" / "later.py") in changed)
        # nothing from inside an ignored folder is reported
        (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
        time.sleep(0.3)
        assert not any("node_modules" in Path(c).relative_to(root).parts for c in changed)
    finally:
        watcher.stop()
    assert not watcher.is_alive()
    assert not {p.stat().st_ino for p in folders_below(root)} & watched_inodes()


def test_the_workspace_index_watches_through_the_pruned_watcher(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ws")
    index = WorkspaceIndex([root], config=IndexConfig(debounce_s=0.05))
    index.start()
    try:
        assert index.wait_ready(30)
        assert not {p.stat().st_ino for p in excluded_folders(root)} & watched_inodes()
        (root / "src" / "pkg" / "sub" / "queues.py").write_text("def drain_queue(q):\n    return list(q)\n")
        assert wait_until(
            lambda: [Path(h.chunk.path).name for h in index.search("drain_queue", limit=1)] == ["queues.py"]
        )
    finally:
        assert index.close()
