"""Following file changes under the workspace folders without watching ignored folders.

On Linux each folder needs its own inotify watch, and watchdog's recursive observer places one in
every folder (``node_modules``, ``.git``, virtual environments), which exhausts the per-user limit
on large repositories. :class:`FolderWatcher` places one watch per folder while walking the tree
with the ignored folders pruned, on one inotify instance (watchdog's ``InotifyFD``), and extends
the walk to folders created or moved in later. Elsewhere (one recursive handle per root on macOS
and Windows, no per-folder limit) watchdog's observer is used and ignored paths are filtered out
by the caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["FolderWatcher"]

log = logging.getLogger(__name__)

try:  # Linux with watchdog >= 7 (the version the project locks)
    from watchdog.observers.inotify_c import InotifyConstants as _C
    from watchdog.observers.inotify_c import InotifyFD as _InotifyFD
except Exception:  # pragma: no cover - no inotify (UnsupportedLibcError) or an older watchdog
    _InotifyFD = None

_CALLBACK_ID = 1
# what a folder's watch reports: its entries created, written, deleted and moved
_MASK = (
    _C.IN_CREATE
    | _C.IN_DELETE
    | _C.IN_MODIFY
    | _C.IN_CLOSE_WRITE
    | _C.IN_MOVED_FROM
    | _C.IN_MOVED_TO
    | _C.IN_DELETE_SELF
    | _C.IN_ONLYDIR
    if _InotifyFD is not None
    else 0
)


class FolderWatcher:
    """Reports paths that changed under ``roots`` to ``on_change``, never watching a folder for
    which ``skip`` is true (nor anything below it)."""

    def __init__(
        self, roots: Iterable[Path], on_change: Callable[[str], None], skip: Callable[[Path], bool]
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self._on_change = on_change
        self._skip = skip
        self._lock = threading.Lock()
        self._folders: dict[int, str] = {}  # watch descriptor -> folder
        self._fd: Any = None
        self._observer: Any = None

    @property
    def watched(self) -> list[str]:
        """The folders with a watch (all of them on Linux; the roots elsewhere)."""
        if self._fd is None:
            return [str(r) for r in self.roots] if self._observer is not None else []
        with self._lock:
            return sorted(self._folders.values())

    def start(self) -> None:
        """Place the watches and start reporting changes."""
        if _InotifyFD is None:
            self._start_observer()
            return
        self._fd = _InotifyFD()
        self._fd.start()
        for root in self.roots:
            if root.is_dir():
                self._watch_tree(str(root))

    def stop(self, timeout: float = 5.0) -> None:
        """Remove every watch and stop the reader threads."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._fd is not None:
            self._fd.stop()
            self._fd.join(timeout)

    def is_alive(self) -> bool:
        """Whether a reader thread is still running."""
        thread = self._fd if self._fd is not None else self._observer
        return thread is not None and thread.is_alive()

    # ---- inotify ---------------------------------------------------------------------------------

    def _watch_tree(self, top: str) -> None:
        """Watch ``top`` and the folders below it, pruning ignored ones (no links followed)."""
        roots = {str(r) for r in self.roots}
        stack = [top]
        while stack:
            folder = stack.pop()
            if folder not in roots and self._skip(Path(folder)):
                continue
            try:
                wd = self._fd.add_callback(os.fsencode(folder), _MASK, self, _CALLBACK_ID)
            except OSError as exc:
                if folder == top:
                    log.warning("cannot watch %s (%s); its changes are not followed", folder, exc)
                    return
                log.warning("cannot watch %s (%s)", folder, exc)
                continue
            with self._lock:
                self._folders[wd] = folder
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))

    def _unwatch_tree(self, top: str) -> None:
        """Forget the watches of ``top`` and below (a folder moved away)."""
        prefix = top.rstrip("/") + "/"
        with self._lock:
            gone = [wd for wd, f in self._folders.items() if f == top or f.startswith(prefix)]
            for wd in gone:
                del self._folders[wd]
        if gone:
            self._fd.remove_callbacks([(wd, _CALLBACK_ID) for wd in gone])

    # WatchCallback protocol (called on watchdog's dispatcher thread)

    def on_event(self, event: Any) -> None:
        """One inotify event of a watched folder."""
        with self._lock:
            folder = self._folders.get(event.wd)
        if folder is None or event.is_ignored:
            return
        path = os.path.join(folder, os.fsdecode(event.name)) if event.name else folder
        if event.is_directory:
            if event.is_moved_from:
                self._unwatch_tree(path)
            elif self._skip(Path(path)):
                return  # an ignored folder appeared: nothing in it is watched or reported
            elif event.is_create or event.is_moved_to:
                self._watch_tree(path)
        if event.is_delete_self:
            return  # the parent folder reports the deletion
        self._on_change(path)

    def on_watch_deleted(self, wd: int) -> None:
        """A watched folder is gone."""
        with self._lock:
            self._folders.pop(wd, None)

    def on_queue_overflow(self) -> None:
        """Events were lost: watch any folder missed and re-read the roots."""
        for root in self.roots:
            if root.is_dir():
                self._watch_missing(str(root))

    def on_events_lost(self) -> None:
        """After an overflow: every root is re-read."""
        for root in self.roots:
            self._on_change(str(root))

    def _watch_missing(self, top: str) -> None:
        with self._lock:
            known = set(self._folders.values())
        stack = [top]
        while stack:
            folder = stack.pop()
            if folder != top and self._skip(Path(folder)):
                continue
            if folder not in known:
                self._watch_tree(folder)
                continue
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))

    # ---- other platforms -------------------------------------------------------------------------

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        report = self._on_change

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if event.is_directory and event.event_type not in ("moved", "deleted", "created"):
                    return
                report(str(event.src_path))
                if getattr(event, "dest_path", None):
                    report(str(event.dest_path))

        observer = Observer()
        for root in self.roots:
            if root.is_dir():
                observer.schedule(Handler(), str(root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
