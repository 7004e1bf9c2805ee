"""Resource limits of one sandboxed execution."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Limits"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one execution may use before it is stopped.

    The per-process limits (CPU, address space, processes, file size, open files) are applied with
    ``setrlimit`` inside the sandbox. Where the sandbox can create a cgroup, ``memory_bytes`` and
    ``max_processes`` also cap the execution as a whole (every process and the tmpfs files
    together); see ``Sandbox.protections``. The wall time and the output size are enforced by the
    caller.
    """

    cpu_seconds: int = 10  # CPU time of each process (RLIMIT_CPU; SIGXCPU, then SIGKILL one second later)
    wall_seconds: float = 20.0  # wall time of the whole execution, processes and children included
    memory_bytes: int = 512 * _MIB  # memory of the execution (cgroup) and of each process (RLIMIT_AS)
    max_processes: int = 32  # processes and threads of the execution (cgroup pids, RLIMIT_NPROC)
    max_file_bytes: int = 16 * _MIB  # size of any file written (RLIMIT_FSIZE)
    max_open_files: int = 64  # open file descriptors per process (RLIMIT_NOFILE)
    max_output_bytes: int = 256 * 1024  # captured stdout and stderr, each; more stops the execution
    tmpfs_bytes: int = 64 * _MIB  # size of the writable working directory (bubblewrap's tmpfs)

    def __post_init__(self) -> None:
        checks = {
            "cpu_seconds": self.cpu_seconds >= 1,
            "wall_seconds": self.wall_seconds > 0,
            "memory_bytes": self.memory_bytes >= 32 * _MIB,
            "max_processes": self.max_processes >= 1,
            "max_file_bytes": self.max_file_bytes >= 1,
            "max_open_files": self.max_open_files >= 16,
            "max_output_bytes": self.max_output_bytes >= 1,
            "tmpfs_bytes": self.tmpfs_bytes >= _MIB,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid sandbox limit(s) {', '.join(bad)}: use positive values "
                "(memory at least 32 MiB, open files at least 16, tmpfs at least 1 MiB)"
            )

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """The ``resource`` limits (name -> (soft, hard)) the launcher sets inside the sandbox."""
        return {
            "RLIMIT_CPU": (self.cpu_seconds, self.cpu_seconds + 1),
            "RLIMIT_AS": (self.memory_bytes, self.memory_bytes),
            "RLIMIT_NPROC": (self.max_processes, self.max_processes),
            "RLIMIT_FSIZE": (self.max_file_bytes, self.max_file_bytes),
            "RLIMIT_NOFILE": (self.max_open_files, self.max_open_files),
            "RLIMIT_CORE": (0, 0),
        }

    def to_dict(self) -> dict[str, float]:
        """The limits as plain JSON-serialisable data."""
        return asdict(self)
