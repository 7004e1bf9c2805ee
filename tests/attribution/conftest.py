"""Shared fixtures of the attribution tests: a real-code corpus and its index, built once."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from attribution import BuildConfig, Index, build_index
from attribution.sources import SourceFile, iter_source_files

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])
# A sub-set of the standard library (PSF-2.0), kept small so the index builds in seconds.
STDLIB_FILES = (
    "textwrap.py", "shlex.py", "heapq.py", "bisect.py", "fnmatch.py", "glob.py", "difflib.py",
    "csv.py", "calendar.py", "getopt.py", "colorsys.py", "json/__init__.py", "json/decoder.py",
    "json/encoder.py", "json/scanner.py", "statistics.py", "fractions.py", "graphlib.py",
)  # fmt: skip
# An installed package with its dist-info (license from METADATA).
PACKAGE = "datasketch"
# Installed packages that are not in the corpus: the "outside" code.
OUTSIDE = ("bm25s", "click", "pygls")


def _copy_package(name: str, dest: Path) -> None:
    repo = dest / name
    shutil.copytree(SITE / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    info = sorted(SITE.glob(f"{name}-*.dist-info"))[0]
    shutil.copytree(info, repo / info.name)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cpython`` (a stdlib sub-set with Python's LICENSE) and ``datasketch`` (MIT), one folder."""
    root = tmp_path_factory.mktemp("attr-corpus")
    repo = root / "cpython"
    for name in STDLIB_FILES:
        target = repo / "Lib" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / name, target)
    shutil.copy(STDLIB / "LICENSE.txt", repo / "LICENSE")
    _copy_package(PACKAGE, root)
    return root


@pytest.fixture(scope="session")
def corpus_files(corpus_dir: Path) -> list[SourceFile]:
    """The corpus as the index saw it."""
    return list(iter_source_files([corpus_dir]))


@pytest.fixture(scope="session")
def index_dir(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus' index, built once for the session."""
    out = tmp_path_factory.mktemp("attr-index") / "index"
    build_index([corpus_dir], out, BuildConfig(workers=2, progress=False))
    return out


@pytest.fixture(scope="session")
def index(index_dir: Path) -> Index:
    """The session index, opened."""
    with Index.open(index_dir) as opened:
        yield opened


@pytest.fixture(scope="session")
def outside_files() -> list[SourceFile]:
    """Python files of installed packages that are not in the corpus."""
    files = []
    for name in OUTSIDE:
        if (SITE / name).is_dir():
            files += iter_source_files([SITE / name], extensions=[".py"])
    return files
