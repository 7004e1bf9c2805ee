"""Isolation modes: how a program is cut off from the machine.

``bwrap``        bubblewrap: new mount, pid, network, IPC and UTS namespaces; the filesystem holds
                 only the interpreter, its stdlib and the system libraries (read-only) plus tmpfs
                 work dirs; never uid 0 (a root caller's programs drop to a throw-away uid, a
                 user's run in a user namespace that cannot create others); resource limits, and
                 a per-execution cgroup when the caller may create one (see ``cgroup``).
``unsafe-none``  no isolation at all, only for a caller that asks for it by name (a throw-away
                 VM or container that is itself the isolation): resource limits, a clean
                 environment and a private work dir, the caller's uid, which must not be root.
                 The program can read and write whatever the caller can, and use the network.

There is no fallback between them: ``auto`` means bubblewrap or an error saying to install it.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from training.sandbox.interpreter import Interpreter
from training.sandbox.limits import Limits

__all__ = ["Job", "Launch", "IsolationMode", "ISOLATIONS", "UNSAFE"]

# Where things live inside the bubblewrap sandbox.
SANDBOX_DIR = "/sandbox"
WORK_DIR = "/work"
# Range of throw-away uids programs run as when the caller is root (each execution draws one, so
# process-count limits and signals never reach across executions or to the caller).
_UID_RANGE = (1_000_000_000, 2_000_000_000)
_LIB_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")
_TOP_LIB_LINKS = ("/lib", "/lib64", "/lib32", "/libx32")
_PY_FLAGS = ("-I", "-S", "-B")  # isolated mode, no site-packages, no bytecode files


@dataclass(frozen=True)
class Job:
    """One execution's files on the host and its settings."""

    host_dir: str  # private temporary directory of this execution
    launcher: str  # host path of launcher.py
    program: str  # host path of the program
    workdir: str  # host working directory (used by the modes without a private filesystem)
    interpreter: Interpreter
    limits: Limits


@dataclass
class Launch:
    """The command that starts a job, and the launcher's settings."""

    argv: list[str]
    cwd: str
    program_path: str  # the program's path as the launcher sees it
    drop_uid: int | None  # uid the launcher switches to (only when started as root)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IsolationMode:
    """One way of isolating a program."""

    name: str
    protections: Callable[[Interpreter], tuple[str, ...]]  # what the mode enforces for that interpreter
    available: Callable[[], str | None]  # None when usable, else why not
    build: Callable[[Job], Launch]


def _is_root() -> bool:
    return os.geteuid() == 0


def _draw_uid() -> int | None:
    return random.randint(*_UID_RANGE) if _is_root() else None


def _clean_env(home: str, tmp: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


# ---------------------------------------------------------------------------------------- bwrap


def _bwrap_available() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    return None


def _ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _bwrap_build(job: Job) -> Launch:
    interp, limits = job.interpreter, job.limits
    root = _is_root()
    argv = ["bwrap", "--die-with-parent", "--new-session"]
    if root:
        # No user namespace: the launcher drops to a throw-away uid itself, so that the kernel
        # enforces the process-count limit (it never does for uid 0).
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
    # The interpreter and its stdlib, read-only. Bubblewrap creates missing parents 0700, which
    # the unprivileged uid could not traverse (no shared library loaded after the start, no
    # interpreter started by the program), so every parent is made 0755 first.
    binds: list[str] = []
    made: set[str] = set()

    def parents_of(path: str) -> list[str]:
        args = []
        for parent in _ancestors(path):
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        return args

    prefix = interp.prefix
    if prefix not in ("/usr", "/"):
        binds += [*parents_of(prefix), "--ro-bind", prefix, prefix]
        made.add(prefix)
        if os.path.isdir(interp.site_packages):
            binds += ["--tmpfs", interp.site_packages]
    else:
        binds += [*parents_of(interp.executable), "--ro-bind", interp.executable, interp.executable]
    for lib in _LIB_DIRS:
        if os.path.isdir(lib) and not os.path.islink(lib):
            binds += [*parents_of(lib), "--ro-bind", lib, lib]
            made.add(lib)
    for top in _TOP_LIB_LINKS:
        if os.path.islink(top):
            binds += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            binds += ["--ro-bind", top, top]
    argv += binds
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for tmp in (WORK_DIR, "/tmp"):
        argv += ["--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", tmp]
    argv += ["--perms", "0755", "--dir", SANDBOX_DIR]
    argv += ["--ro-bind", job.launcher, f"{SANDBOX_DIR}/launcher.py"]
    argv += ["--ro-bind", job.program, f"{SANDBOX_DIR}/main.py"]
    argv += ["--remount-ro", "/", "--chdir", WORK_DIR, "--clearenv"]
    for key, value in _clean_env(WORK_DIR, "/tmp").items():
        argv += ["--setenv", key, value]
    argv += [interp.executable, *_PY_FLAGS, f"{SANDBOX_DIR}/launcher.py"]
    return Launch(
        argv=argv,
        cwd=job.host_dir,
        program_path=f"{SANDBOX_DIR}/main.py",
        drop_uid=_draw_uid(),
    )


def _bwrap_protections(interp: Interpreter) -> tuple[str, ...]:
    return (
        "mount-namespace",
        "read-only-filesystem",
        "pid-namespace",
        "network-namespace",
        "unprivileged-uid",
        "rlimits",
        "clean-environment",
    )


# ---------------------------------------------------------------------------------- unsafe-none

UNSAFE = "unsafe-none"


def _unsafe_available() -> str | None:
    if _is_root():
        return "it would run generated code as root on the host; run as an unprivileged user"
    return None


def _unsafe_build(job: Job) -> Launch:
    return Launch(
        argv=[job.interpreter.executable, *_PY_FLAGS, job.launcher],
        cwd=job.workdir,
        program_path=job.program,
        drop_uid=None,
        env=_clean_env(job.workdir, job.workdir),
    )


def _unsafe_protections(interp: Interpreter) -> tuple[str, ...]:
    return ("rlimits", "clean-environment")


ISOLATIONS: dict[str, IsolationMode] = {
    "bwrap": IsolationMode("bwrap", _bwrap_protections, _bwrap_available, _bwrap_build),
    UNSAFE: IsolationMode(UNSAFE, _unsafe_protections, _unsafe_available, _unsafe_build),
}
