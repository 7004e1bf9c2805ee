"""Type-check seeds with pyright in batches; a seed is kept only with zero errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from training.errors import ConfigError

__all__ = ["pyright_errors", "find_pyright"]

_CONFIG = {"typeCheckingMode": "basic", "pythonVersion": "3.11", "reportMissingModuleSource": False}


def find_pyright() -> str:
    """The pyright executable: next to the running interpreter (the venv), else on PATH."""
    candidate = Path(sys.executable).parent / "pyright"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pyright")
    if found is None:
        raise ConfigError("pyright is not installed; run `pip install pyright` or pass --no-typecheck")
    return found


def pyright_errors(codes: Sequence[str], *, batch_size: int = 400, timeout: float = 900) -> list[int]:
    """Number of pyright errors of each code string (checked as separate files, ``batch_size`` per run)."""
    exe = find_pyright()
    counts = [0] * len(codes)
    for start in range(0, len(codes), batch_size):
        batch = codes[start : start + batch_size]
        with tempfile.TemporaryDirectory(prefix="stackcoder-pyright-") as tmp:
            root = Path(tmp)
            (root / "pyrightconfig.json").write_text(json.dumps(_CONFIG))
            for i, code in enumerate(batch):
                (root / f"seed_{start + i}.py").write_text(code)
            proc = subprocess.run(
                [exe, "--outputjson", "--project", str(root)],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            try:
                report = json.loads(proc.stdout)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"pyright produced no report ({proc.stderr.strip()[:200]}); check `pyright --version` or pass --no-typecheck"
                ) from exc
            for diag in report.get("generalDiagnostics", []):
                if diag.get("severity") == "error":
                    name = Path(diag["file"]).stem
                    if name.startswith("seed_"):
                        counts[int(name.removeprefix("seed_"))] += 1
    return counts
