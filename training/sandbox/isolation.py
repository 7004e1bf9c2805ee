"""Isolation modes: how a program is cut off from the machine, strongest first.

``bwrap``   bubblewrap: new mount, pid, network, IPC and UTS namespaces; the filesystem holds only
            the interpreter, its stdlib and the system libraries (read-only) plus tmpfs work dirs;
            an unprivileged uid; resource limits.
``unshare`` util-linux ``unshare``: network, pid, IPC and UTS namespaces; resource limits; an
            unprivileged uid when started as root; file access outside the work dir blocked by an
            audit hook (best effort: C extensions can bypass it).
``rlimits`` resource limits only, with the audit hook blocking sockets, process control and file
            access outside the work dir (best effort).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from training.sandbox.interpreter import Interpreter
from training.sandbox.limits import Limits

__all__ = ["Job", "Launch", "IsolationMode", "ISOLATIONS", "PREFERENCE"]

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
    guard: dict | None  # audit-hook guard settings, None when the namespaces suffice
    cleanup_uid: int | None = None  # kill every process of this uid after the run (no pid namespace)
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


def _others_can_use(interp: Interpreter) -> bool:
    """Whether a uid without privileges can traverse to and read the interpreter's stdlib."""
    for directory in [*_ancestors(interp.stdlib), interp.stdlib]:
        try:
            mode = os.stat(directory).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def _host_drop_uid(interp: Interpreter) -> int | None:
    """A throw-away uid for the modes that share the host filesystem (None: stay as we are).

    When the interpreter lives where other users cannot read (a pyenv under /root), dropping
    privileges would break every import, so the program keeps the caller's uid.
    """
    return _draw_uid() if _others_can_use(interp) else None


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
    # The interpreter and its stdlib, read-only; bubblewrap creates missing parents 0700, so make
    # them traversable for the unprivileged uid.
    prefix = interp.prefix
    binds: list[str] = []
    if prefix not in ("/usr", "/"):
        for parent in _ancestors(prefix):
            if parent not in _LIB_DIRS and parent != "/usr":
                binds += ["--perms", "0755", "--dir", parent]
        binds += ["--ro-bind", prefix, prefix]
        if os.path.isdir(interp.site_packages):
            binds += ["--tmpfs", interp.site_packages]
    else:
        binds += ["--ro-bind", interp.executable, interp.executable]
    for lib in _LIB_DIRS:
        if os.path.isdir(lib) and not os.path.islink(lib):
            binds += ["--ro-bind", lib, lib]
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
        guard=None,
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


# -------------------------------------------------------------------------------------- unshare


def _unshare_available() -> str | None:
    if shutil.which("unshare") is None:
        return "util-linux unshare is not installed"
    probe = ["unshare", "--net", "--pid", "--fork", "true"]
    if not _is_root():
        probe[1:1] = ["--user", "--map-root-user"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return None if ok else "namespaces cannot be created here (unprivileged user namespaces disabled?)"


def _guard_for(job: Job, uid: int | None) -> dict:
    """Audit-hook settings: readable and writable roots; forks are refused when the kernel would
    not enforce the process-count limit (a root caller whose programs keep uid 0)."""
    return {
        "read": [*job.interpreter.read_roots, os.path.dirname(job.program)],
        "write": [job.workdir],
        "no_fork": _is_root() and uid is None,
    }


def _prepare_workdir(job: Job, uid: int | None) -> None:
    """Let the throw-away uid read the program and own the work dir (and nothing else)."""
    if uid is None:
        return
    for directory in (job.host_dir, os.path.dirname(job.program)):
        os.chmod(directory, 0o755)
    for path in (job.program, job.launcher):
        os.chmod(path, 0o644)
    os.chown(job.workdir, uid, uid)


def _unshare_build(job: Job) -> Launch:
    uid = _host_drop_uid(job.interpreter)
    _prepare_workdir(job, uid)
    argv = ["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
    if not _is_root():
        argv[1:1] = ["--user", "--map-root-user"]
    argv += [job.interpreter.executable, *_PY_FLAGS, job.launcher]
    return Launch(
        argv=argv,
        cwd=job.workdir,
        program_path=job.program,
        drop_uid=uid,
        guard=_guard_for(job, uid),
        env=_clean_env(job.workdir, job.workdir),
    )


def _uid_protection(interp: Interpreter) -> tuple[str, ...]:
    """'unprivileged-uid' when a root caller's programs run as a throw-away uid."""
    if not _is_root():
        return ()
    return ("unprivileged-uid",) if _others_can_use(interp) else ("fork-blocked",)


def _unshare_protections(interp: Interpreter) -> tuple[str, ...]:
    extra = _uid_protection(interp)
    return ("pid-namespace", "network-namespace", *extra, "rlimits", "audit-guard", "clean-environment")


# -------------------------------------------------------------------------------------- rlimits


def _rlimits_build(job: Job) -> Launch:
    uid = _host_drop_uid(job.interpreter)
    _prepare_workdir(job, uid)
    return Launch(
        argv=[job.interpreter.executable, *_PY_FLAGS, job.launcher],
        cwd=job.workdir,
        program_path=job.program,
        drop_uid=uid,
        guard=_guard_for(job, uid),
        cleanup_uid=uid,
        env=_clean_env(job.workdir, job.workdir),
    )


def _rlimits_protections(interp: Interpreter) -> tuple[str, ...]:
    extra = _uid_protection(interp)
    return (*extra, "rlimits", "audit-guard", "clean-environment")


ISOLATIONS: dict[str, IsolationMode] = {
    "bwrap": IsolationMode("bwrap", _bwrap_protections, _bwrap_available, _bwrap_build),
    "unshare": IsolationMode("unshare", _unshare_protections, _unshare_available, _unshare_build),
    "rlimits": IsolationMode("rlimits", _rlimits_protections, lambda: None, _rlimits_build),
}
# The order "auto" tries the modes in.
PREFERENCE = ("bwrap", "unshare", "rlimits")
