"""Resumable stage files: one jsonl per stage, appended record by record, plus a completion marker."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["StageFile"]


class StageFile:
    """``<dir>/<name>.jsonl`` holding one JSON record per line, each with an ``id``.

    Records are appended and flushed one at a time, so an interrupted stage resumes by skipping
    the ids already written; ``<name>.done.json`` marks a finished stage and holds its counts.
    """

    def __init__(self, directory: str | Path, name: str) -> None:
        self.path = Path(directory) / f"{name}.jsonl"
        self.marker = Path(directory) / f"{name}.done.json"
        self._lock = threading.Lock()

    @property
    def complete(self) -> bool:
        """Whether the stage finished (its marker exists)."""
        return self.marker.exists()

    def read(self) -> Iterator[dict[str, Any]]:
        """The records written so far (a torn last line from a crash is skipped)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def done_ids(self) -> set[str]:
        """Ids of the records already written."""
        return {r["id"] for r in self.read()}

    def append(self, record: dict[str, Any]) -> None:
        """Write one record (thread-safe) and flush it."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)

    def retain(self, ids: set[str]) -> None:
        """Drop the records whose id is not in ``ids`` (inputs that an upstream rerun removed)."""
        if not self.path.exists():
            return
        records = [r for r in self.read() if r["id"] in ids]
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)

    def reset(self) -> None:
        """Forget the stage's records and marker (used when a stage must be recomputed)."""
        for path in (self.path, self.marker):
            path.unlink(missing_ok=True)

    def finish(self, counts: dict[str, Any]) -> None:
        """Mark the stage complete with its counts."""
        self.marker.write_text(json.dumps(counts, indent=2))

    def counts(self) -> dict[str, Any]:
        """The counts saved by :meth:`finish` (empty when the stage is not complete)."""
        return json.loads(self.marker.read_text()) if self.marker.exists() else {}
