"""The folders a process watches with inotify, read from the kernel (``/proc/PID/fdinfo``)."""

from __future__ import annotations

import os
from pathlib import Path


def watched_inodes(pid: int | str = "self") -> set[int]:
    """Inode numbers of every inotify watch the process holds (all its inotify instances)."""
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(fd_dir / fd) != "anon_inode:inotify":
                continue
            info = (Path(f"/proc/{pid}/fdinfo") / fd).read_text()
        except OSError:  # closed meanwhile
            continue
        for line in info.splitlines():
            if line.startswith("inotify wd:"):
                fields = dict(part.split(":", 1) for part in line.split()[1:] if ":" in part)
                inodes.add(int(fields["ino"], 16))
    return inodes


def folders_below(root: Path) -> list[Path]:
    """``root`` and every folder below it (links not followed)."""
    return [root] + [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]
