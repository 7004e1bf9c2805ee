"""The Python interpreter programs run with, and the directories it needs (its stdlib only)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from training.sandbox.errors import SandboxError

__all__ = ["Interpreter", "find_interpreter"]

_QUERY = (
    "import json, os, sys, sysconfig; "
    "print(json.dumps({'executable': os.path.realpath(sys.executable), 'prefix': sys.base_prefix, "
    "'stdlib': sysconfig.get_paths()['stdlib'], 'platstdlib': sysconfig.get_paths()['platstdlib'], "
    "'site_packages': os.path.join(sys.base_prefix, 'lib', 'python%d.%d' % sys.version_info[:2], "
    "'site-packages'), 'version': '%d.%d' % sys.version_info[:2]}))"
)


@dataclass(frozen=True)
class Interpreter:
    """A CPython installation: its real executable, prefix and standard-library directories."""

    executable: str  # the real binary (a virtual environment's python resolved to its base)
    prefix: str  # the installation prefix (sys.base_prefix)
    stdlib: str
    platstdlib: str
    site_packages: str  # the installation's own site-packages, hidden inside the sandbox
    version: str

    @property
    def read_roots(self) -> tuple[str, ...]:
        """Directories the program must be able to read (the interpreter and its stdlib)."""
        return tuple(dict.fromkeys([self.stdlib, self.platstdlib, os.path.dirname(self.executable)]))


@functools.lru_cache(maxsize=8)
def find_interpreter(python: str | None = None) -> Interpreter:
    """Describe ``python`` (default: the base interpreter of the running one).

    Raises:
        SandboxError: the given interpreter does not exist or does not run.
    """
    if python is None:
        return Interpreter(
            executable=os.path.realpath(sys.executable),
            prefix=sys.base_prefix,
            stdlib=_stdlib_of_base(),
            platstdlib=_stdlib_of_base(plat=True),
            site_packages=os.path.join(
                sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages"
            ),
            version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        )
    try:
        out = subprocess.run(
            [python, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(
            f"the sandbox interpreter {python!r} cannot be run ({exc}); pass the path of a working python3"
        ) from exc
    return Interpreter(**json.loads(out))


def _stdlib_of_base(plat: bool = False) -> str:
    """The base installation's stdlib directory (sysconfig of a venv points at the base already)."""
    import sysconfig

    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    return paths["platstdlib" if plat else "stdlib"]
