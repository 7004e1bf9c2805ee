"""One control group per execution: the memory and task caps of the whole process tree.

``RLIMIT_AS`` caps each process; a program that forks sixteen children each under that cap, or
fills its tmpfs, is only held by a cgroup, whose memory limit counts every process of the
execution together with the files it writes to tmpfs, and whose ``pids`` limit counts its tasks.
A cgroup is also how the caller finds and kills whatever the program left running.

The sandbox creates the cgroup below its own one, in cgroup v2 when the memory and pids
controllers are delegated there, else in the cgroup v1 ``memory`` and ``pids`` hierarchies.
That needs write access to those folders (root, or a delegated subtree); without it
:func:`find_cgroups` returns None and the per-process limits are all that apply.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass

__all__ = ["CgroupRoot", "ExecutionCgroup", "find_cgroups"]

CONTROLLERS = ("memory", "pids")
# Joins the cgroups named in $1 (colon-separated cgroup.procs files), then runs the command: every
# process the command starts is then inside them, with no window where one is not.
_JOIN = 'IFS=:; for f in $1; do echo $$ > "$f" || exit 125; done; shift; exec "$@"'


@dataclass(frozen=True)
class _Hierarchy:
    controller: str
    parent: str  # folder the per-execution cgroups are created in
    version: int  # 1 or 2


@dataclass(frozen=True)
class CgroupRoot:
    """Where per-execution cgroups are created, one folder per controller (v2: the same one)."""

    hierarchies: tuple[_Hierarchy, ...]

    @property
    def description(self) -> str:
        """E.g. ``memory (v1) and pids (v1) below /sys/fs/cgroup/...``."""
        return ", ".join(f"{h.controller} (cgroup v{h.version}, {h.parent})" for h in self.hierarchies)

    def create(self, memory_bytes: int, max_tasks: int) -> ExecutionCgroup:
        """A fresh cgroup capping memory (processes and tmpfs together) and tasks.

        Raises:
            OSError: the cgroup could not be created or limited.
        """
        name = f"stackcoder-sandbox-{uuid.uuid4().hex[:16]}"
        cgroup = ExecutionCgroup(
            {h.controller: (os.path.join(h.parent, name), h.version) for h in self.hierarchies}
        )
        try:
            for folder in cgroup.folders:
                os.mkdir(folder, 0o700)
            cgroup.limit(memory_bytes, max_tasks)
        except OSError:
            cgroup.remove()
            raise
        return cgroup


class ExecutionCgroup:
    """The cgroup(s) of one execution: join, check for an out-of-memory kill, kill all, remove."""

    def __init__(self, dirs: dict[str, tuple[str, int]]) -> None:
        self.dirs = dirs  # controller -> (folder, cgroup version)

    @property
    def folders(self) -> list[str]:
        """The distinct folders (one in cgroup v2, one per controller in v1)."""
        return list(dict.fromkeys(folder for folder, _ in self.dirs.values()))

    def limit(self, memory_bytes: int, max_tasks: int) -> None:
        """Write the memory (without swap) and task limits."""
        folder, version = self.dirs["memory"]
        if version == 2:
            _write(folder, "memory.max", memory_bytes)
            _write(folder, "memory.swap.max", 0, optional=True)
        else:
            _write(folder, "memory.limit_in_bytes", memory_bytes)
            _write(folder, "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
        _write(self.dirs["pids"][0], "pids.max", max_tasks)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this cgroup (a shell joins it, then execs the command)."""
        procs = ":".join(os.path.join(folder, "cgroup.procs") for folder in self.folders)
        return ["/bin/sh", "-c", _JOIN, "sh", procs, *argv]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for exceeding its memory limit."""
        folder, version = self.dirs["memory"]
        stats = _read(folder, "memory.events" if version == 2 else "memory.oom_control")
        for line in stats.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def pids(self) -> set[int]:
        """Processes still in the cgroup."""
        found: set[int] = set()
        for folder in self.folders:
            found |= {int(p) for p in _read(folder, "cgroup.procs").split() if p.isdigit()}
        return found

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process left in the cgroup; True once it is empty."""
        deadline = time.monotonic() + timeout
        kill_file = os.path.join(self.dirs["pids"][0], "cgroup.kill")
        while True:
            left = self.pids()
            if not left:
                return True
            if os.path.exists(kill_file):
                with contextlib.suppress(OSError):
                    _write(os.path.dirname(kill_file), "cgroup.kill", 1)
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup folders (retrying while processes exit)."""
        self.kill()
        for folder in self.folders:
            for _ in range(100):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _write(folder: str, name: str, value: int, *, optional: bool = False) -> None:
    path = os.path.join(folder, name)
    if optional and not os.path.exists(path):
        return
    with open(path, "w", encoding="ascii") as f:
        f.write(str(value))


def _read(folder: str, name: str) -> str:
    try:
        with open(os.path.join(folder, name), encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under ``""`` its v2 path."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="ascii") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """cgroup mounts: (mount point, root inside the hierarchy, fstype, super options)."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            fields, extra = head.split(), tail.split()
            if len(extra) >= 3 and extra[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], fields[3], extra[0], set(extra[2].split(","))))
    return found


def _inside(mount: str, root: str, path: str) -> str | None:
    if root == "/":
        return os.path.join(mount, path.lstrip("/"))
    if path == root or path.startswith(root.rstrip("/") + "/"):
        return os.path.join(mount, path[len(root) :].lstrip("/"))
    return None


def _hierarchy(controller: str, own: dict[str, str], mounts: list) -> _Hierarchy | None:
    for mount, root, fstype, options in mounts:
        if fstype == "cgroup" and controller in options and controller in own:
            parent = _inside(mount, root, own[controller])
            if parent and os.access(parent, os.W_OK):
                return _Hierarchy(controller, parent, 1)
    for mount, root, fstype, _ in mounts:
        if fstype == "cgroup2" and "" in own:
            parent = _inside(mount, root, own[""])
            delegated = parent and controller in _read(parent, "cgroup.subtree_control").split()
            if parent and delegated and os.access(parent, os.W_OK):
                return _Hierarchy(controller, parent, 2)
    return None


def find_cgroups() -> CgroupRoot | None:
    """Where this process can create per-execution memory + pids cgroups, or None.

    A probe cgroup is created, limited and removed, so a root returned here works.
    """
    try:
        own, mounts = _own_cgroups(), _mounts()
    except OSError:
        return None
    hierarchies = tuple(_hierarchy(c, own, mounts) for c in CONTROLLERS)
    if any(h is None for h in hierarchies):
        return None
    root = CgroupRoot(tuple(h for h in hierarchies if h is not None))
    try:
        root.create(64 * 1024 * 1024, 8).remove()
    except OSError:
        return None
    return root
