"""Run untrusted Python programs, one isolated process each, in a bounded worker pool."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from training.sandbox.cgroup import CgroupRoot, ExecutionCgroup, find_cgroups
from training.sandbox.errors import SandboxError
from training.sandbox.interpreter import Interpreter, find_interpreter
from training.sandbox.isolation import ISOLATIONS, UNSAFE, IsolationMode, Job, Launch
from training.sandbox.limits import Limits
from training.sandbox.result import ExecutionResult

__all__ = ["Sandbox", "workers_for", "memory_per_execution"]

log = logging.getLogger(__name__)

_CPU_MARKER = "sandbox: CPU-time limit reached"  # written by the launcher on SIGXCPU
_PROBE_PROGRAM = "import sys\nprint(sys.version_info[0])\n"


class Sandbox:
    """Executes Python source in a separate, resource-limited, isolated process.

    Args:
        limits: resource limits of each execution.
        isolation: ``"auto"`` or ``"bwrap"`` (bubblewrap, the only isolation there is), or
            ``"unsafe-none"`` to run programs with no isolation at all (never as root; for a
            throw-away VM or container that is itself the isolation).
        python: interpreter to run programs with (default: the running one's base installation).
        workers: executions run at once by :meth:`run_many` (default: the number of CPUs), lowered
            so that every running execution can have its memory limit at once.

    Raises:
        SandboxError: the isolation is unknown or does not work here (the message says what to
            install or change).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        isolation: str = "auto",
        python: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.interpreter: Interpreter = find_interpreter(python)
        self._launcher_source = resources.files("training.sandbox").joinpath("launcher.py").read_text()
        self.cgroups: CgroupRoot | None = find_cgroups()
        self.mode: IsolationMode = self._choose(isolation)
        self.protections: tuple[str, ...] = self._protections(self.mode)
        self.workers = workers_for(self.limits, workers, self.cgroups is not None)
        if self.mode.name == UNSAFE:
            _warn_loudly(
                "sandbox: UNSAFE: generated programs run with NO isolation (isolation='unsafe-none'): "
                "they can read and write your files and use the network; use this only inside a "
                "throw-away VM or container"
            )
        if self.cgroups is None:
            log.warning(
                "sandbox: no cgroup can be created here (run as root, or in a delegated cgroup v2 subtree); "
                "memory is capped per process only, so at most %d programs run at once",
                self.workers,
            )
        log.info(
            "sandbox isolation %s (%s), limits %s, %d workers, cgroups: %s",
            self.mode.name,
            ", ".join(self.protections),
            self.limits,
            self.workers,
            self.cgroups.description if self.cgroups else "none",
        )

    @property
    def isolation(self) -> str:
        """Name of the isolation mode in use."""
        return self.mode.name

    def _choose(self, isolation: str) -> IsolationMode:
        if isolation != "auto" and isolation not in ISOLATIONS:
            raise SandboxError(
                f"unknown sandbox isolation {isolation!r}; choose auto or one of {', '.join(ISOLATIONS)}"
            )
        mode = ISOLATIONS["bwrap" if isolation == "auto" else isolation]
        why = mode.available() or self._probe(mode)
        if why is None:
            return mode
        if mode.name == UNSAFE:
            raise SandboxError(f"refusing isolation {UNSAFE!r}: {why}")
        raise SandboxError(
            f"generated code runs only under bubblewrap, which does not work here ({why}): install it "
            f"(apt-get install bubblewrap) and allow unprivileged user namespaces, or pass isolation "
            f"{UNSAFE!r} inside a throw-away VM or container"
        )

    def _protections(self, mode: IsolationMode) -> tuple[str, ...]:
        extra = ("memory-cgroup", "tasks-cgroup") if self.cgroups else ("memory-per-process",)
        return (*mode.protections(self.interpreter), *extra)

    def _probe(self, mode: IsolationMode) -> str | None:
        result = self._execute(mode, _PROBE_PROGRAM, Limits(wall_seconds=30))
        if result.passed and result.stdout.strip() == "3":
            return None
        return f"a test program did not run ({result.status}: {result.reason})"

    def run(self, code: str, *, limits: Limits | None = None) -> ExecutionResult:
        """Execute ``code`` as ``__main__`` in a fresh sandbox and report how it ended.

        Never raises for anything the program does: a crash, a limit or a hostile action is a
        result with a status and a reason.
        """
        return self._execute(self.mode, code, limits or self.limits)

    def run_many(
        self, programs: Sequence[str], *, limits: Limits | None = None, progress: bool | str = False
    ) -> list[ExecutionResult]:
        """Execute many programs, ``workers`` at a time; results come back in input order.

        ``progress`` shows a tqdm bar (a string is used as its description).
        """
        if not programs:
            return []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(programs), desc=progress if isinstance(progress, str) else "sandbox", unit="prog"
            )
        results: list[ExecutionResult | None] = [None] * len(programs)

        def one(index: int) -> None:
            results[index] = self.run(programs[index], limits=limits)
            if bar is not None:
                bar.update(1)

        try:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(programs))) as pool:
                list(pool.map(one, range(len(programs))))
        finally:
            if bar is not None:
                bar.close()
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------------------ internals

    def _execute(self, mode: IsolationMode, code: str, limits: Limits) -> ExecutionResult:
        host_dir = tempfile.mkdtemp(prefix="stackcoder-sandbox-")
        try:
            try:
                launch = mode.build(self._write_job(host_dir, code, limits))
            except (OSError, ValueError) as exc:  # disk full, unencodable source text
                return self._error(mode, f"could not prepare the execution: {exc}")
            return self._spawn(mode, launch, limits)
        finally:
            shutil.rmtree(host_dir, ignore_errors=True)

    def _write_job(self, host_dir: str, code: str, limits: Limits) -> Job:
        files = os.path.join(host_dir, "sandbox")
        work = os.path.join(host_dir, "work")
        os.mkdir(files)
        os.mkdir(work, 0o700)
        launcher = os.path.join(files, "launcher.py")
        program = os.path.join(files, "main.py")
        with open(launcher, "w", encoding="utf-8") as f:
            f.write(self._launcher_source)
        with open(program, "w", encoding="utf-8") as f:
            f.write(code)
        return Job(host_dir, launcher, program, work, self.interpreter, limits)

    def _spawn(self, mode: IsolationMode, launch: Launch, limits: Limits) -> ExecutionResult:
        config = {"program": launch.program_path, "rlimits": limits.rlimits(), "drop_uid": launch.drop_uid}
        argv = [*launch.argv, json.dumps(config)]
        cgroup: ExecutionCgroup | None = None
        if self.cgroups is not None:
            try:
                cgroup = self.cgroups.create(limits.memory_bytes, limits.max_processes)
            except OSError as exc:
                return self._error(mode, f"could not create the execution's cgroup: {exc}")
            argv = cgroup.wrap(argv)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=launch.cwd,
                env=launch.env or {"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            if cgroup is not None:
                cgroup.remove()
            return self._error(mode, f"could not start {argv[0]}: {exc}")
        try:
            out, err, overflow, timed_out = _collect(
                proc, start + limits.wall_seconds, limits.max_output_bytes
            )
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
            oom = cgroup is not None and cgroup.oom_killed()
            if cgroup is not None:
                cgroup.remove()  # kills whatever is left first
        wall = time.monotonic() - start
        status, reason = _classify(mode.name, proc.returncode, err, overflow, timed_out, limits, oom)
        return ExecutionResult(
            status=status,
            reason=reason,
            returncode=proc.returncode,
            stdout=out,
            stderr=err,
            wall_seconds=round(wall, 3),
            isolation=mode.name,
            protections=self._protections(mode),
        )

    def _error(self, mode: IsolationMode, reason: str) -> ExecutionResult:
        return ExecutionResult(
            "sandbox_error", reason, None, isolation=mode.name, protections=self._protections(mode)
        )


def _collect(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[str, str, bool, bool]:
    """Read stdout/stderr until both close, the deadline passes or a stream exceeds ``cap`` bytes."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    overflow = timed_out = False
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = buffers[key.fd]
                buf += chunk[: max(0, cap + 1 - len(buf))]
                if len(buf) > cap:
                    overflow = True
            if overflow:
                break
    if not (overflow or timed_out):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    proc.stdout.close()
    proc.stderr.close()
    return (
        bytes(buffers[out_fd][:cap]).decode("utf-8", "replace"),
        bytes(buffers[err_fd][:cap]).decode("utf-8", "replace"),
        overflow,
        timed_out,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (bubblewrap's pid namespace and the cgroup take the rest)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _last_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _signal_of(mode: str, returncode: int) -> int | None:
    if returncode < 0:
        return -returncode
    if mode == "bwrap" and returncode > 128:  # bubblewrap reports a signalled child as 128 + N
        return returncode - 128
    return None


def _classify(
    mode: str,
    returncode: int,
    stderr: str,
    overflow: bool,
    timed_out: bool,
    limits: Limits,
    oom: bool = False,
) -> tuple[str, str]:
    """Map how the process ended to a status of ``STATUSES`` and a one-line reason."""
    if overflow:
        return "output_limit", f"printed more than the output limit of {limits.max_output_bytes} bytes"
    if timed_out:
        return "timeout", f"wall-time limit of {limits.wall_seconds:g} s reached"
    if returncode == 0:
        return "passed", "exit status 0"
    last = _last_line(stderr)
    if mode == "bwrap" and stderr.startswith("bwrap:"):
        return "sandbox_error", last
    if last == _CPU_MARKER:
        return "cpu_limit", f"CPU-time limit of {limits.cpu_seconds} s reached"
    if oom:
        return (
            "memory_limit",
            f"memory limit of {limits.memory_bytes // (1024 * 1024)} MiB of the execution reached",
        )
    sig = _signal_of(mode, returncode)
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return "cpu_limit", f"CPU-time limit of {limits.cpu_seconds} s reached ({name})"
        if sig == signal.SIGXFSZ:
            return "file_size_limit", f"file-size limit of {limits.max_file_bytes} bytes reached"
        return "killed", f"killed by {name}" + (f": {last}" if last else "")
    if last.startswith("MemoryError") or "Cannot allocate memory" in last:
        return "memory_limit", f"memory limit of {limits.memory_bytes // (1024 * 1024)} MiB reached ({last})"
    if "File too large" in last:
        return "file_size_limit", f"file-size limit of {limits.max_file_bytes} bytes reached ({last})"
    return "failed", last or f"exit status {returncode}"


def memory_per_execution(limits: Limits, cgroup: bool) -> int:
    """The most memory one execution can take: its cgroup limit, or without one every process at
    its address-space limit plus both tmpfs folders full."""
    if cgroup:
        return limits.memory_bytes
    return limits.memory_bytes * limits.max_processes + 2 * limits.tmpfs_bytes


def _available_memory() -> int:
    """MemAvailable of /proc/meminfo in bytes (the total when the kernel does not report it)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        key = "MemAvailable" if "MemAvailable" in fields else "MemTotal"
        return int(fields[key].split()[0]) * 1024
    except (OSError, ValueError, KeyError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def workers_for(limits: Limits, requested: int | None, cgroup: bool, available: int | None = None) -> int:
    """Executions run at once: ``requested`` (default: the CPUs), but no more than fit in the
    available memory at ``memory_per_execution`` each (always at least one)."""
    wanted = max(1, requested or os.cpu_count() or 1)
    budget = _available_memory() if available is None else available
    fit = max(1, budget // memory_per_execution(limits, cgroup))
    if fit < wanted:
        log.warning(
            "sandbox: %d workers asked for, %d fit in %d MiB of available memory at %d MiB per execution",
            wanted,
            fit,
            budget // (1024 * 1024),
            memory_per_execution(limits, cgroup) // (1024 * 1024),
        )
    return min(wanted, fit)


def _warn_loudly(message: str) -> None:
    """Log and warn (every time a sandbox is created with less than full isolation)."""
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
