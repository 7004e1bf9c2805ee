"""The outcome of one sandboxed execution."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["ExecutionResult", "STATUSES"]

# Every status an execution can end with, and what it means.
STATUSES: dict[str, str] = {
    "passed": "the program exited with status 0",
    "failed": "the program exited with a non-zero status (an exception, a failed assert)",
    "timeout": "the wall-time limit was reached and every process was killed",
    "cpu_limit": "a process used up its CPU-time limit",
    "memory_limit": "a process, or the execution as a whole, hit the memory limit",
    "output_limit": "the program printed more than the output limit and was killed",
    "file_size_limit": "the program wrote a file larger than the file-size limit",
    "killed": "a process was killed by a signal",
    "sandbox_error": "the sandbox itself could not start the program",
}


@dataclass
class ExecutionResult:
    """What one program did in the sandbox."""

    status: str  # one of STATUSES
    reason: str  # one line: why it ended that way (the last line of a traceback, the limit hit)
    returncode: int | None  # exit status (negative or 128+N: killed by signal N), None if never started
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    isolation: str = ""  # the isolation mode that applied ("bwrap", or "unsafe-none" when asked for)
    protections: tuple[str, ...] = field(default_factory=tuple)  # what that mode enforced

    @property
    def passed(self) -> bool:
        """True when the program ran to completion with exit status 0."""
        return self.status == "passed"

    def to_dict(self) -> dict:
        """The result as plain JSON-serialisable data."""
        data = asdict(self)
        data["protections"] = list(self.protections)
        return data
