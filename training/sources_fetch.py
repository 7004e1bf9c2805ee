"""Raw sources for the corpus: Python packages from PyPI and a copy of the standard library.

``fetch_pypi`` downloads each requirement of a list with ``pip download --no-deps`` (wheels,
which hold the package's Python sources and its metadata), unpacks every wheel into its own
folder (one repository per package, named ``name-version``) and records name, version and the
license its metadata states in ``manifest.json``. ``stage_tree`` copies the source files of a
tree such as the standard library, leaving out excluded folders (its tests, site-packages).
Both skip work already done, so re-running them resumes.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tqdm import tqdm

from training.errors import CorpusError

__all__ = ["read_requirements", "fetch_pypi", "stage_tree", "STDLIB_EXCLUDES"]

# Folders of the standard library that are not library code.
STDLIB_EXCLUDES = ("test/*", "*/test/*", "*/tests/*", "*/idle_test/*", "site-packages/*", "__pycache__/*")
_LICENSE_FILE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENSE.rst", "COPYING", "LICENCE")


def read_requirements(path: str | Path) -> list[str]:
    """Requirements of a list file: one per line, ``#`` comments and blank lines ignored."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(
            f"package list {path} does not exist; pass a text file with one PyPI name per line."
        )
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    if not names:
        raise CorpusError(f"package list {path} names no packages; add one PyPI name per line.")
    return names


def _download(requirement: str, dest: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-q",
        "-d",
        str(dest),
        requirement,
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wheel_name(wheel: Path) -> tuple[str, str]:
    name, version = wheel.name.split("-")[:2]
    return name.lower().replace("_", "-"), version


def _unpack(wheel: Path, src_root: Path) -> Path:
    """Unpack a wheel into src_root/name-version, with its license file and METADATA at the top."""
    name, version = _wheel_name(wheel)
    target = src_root / f"{name}-{version}"
    if (target / ".unpacked").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            member_path = Path(member.filename)
            if member.is_dir() or member_path.is_absolute() or ".." in member_path.parts:
                continue
            if member_path.suffix not in (".py", ".pyi") and not member_path.parts[0].endswith(".dist-info"):
                continue
            zf.extract(member, target)
    for info in target.glob("*.dist-info"):
        metadata = info / "METADATA"
        if metadata.is_file():
            shutil.copyfile(metadata, target / "PKG-INFO")
        for candidate in sorted(info.rglob("*")):
            if candidate.is_file() and candidate.name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
                shutil.copyfile(candidate, target / "LICENSE")
                break
    (target / ".unpacked").write_text("")
    return target


def _metadata(folder: Path) -> dict[str, str]:
    import email.parser

    pkg_info = folder / "PKG-INFO"
    if not pkg_info.is_file():
        return {}
    msg = email.parser.Parser().parsestr(
        pkg_info.read_text(encoding="utf-8", errors="replace"), headersonly=True
    )
    classifiers = [c for c in msg.get_all("Classifier") or [] if c.startswith("License ::")]
    return {
        "name": msg.get("Name", ""),
        "version": msg.get("Version", ""),
        "license_field": (msg.get("License-Expression") or msg.get("License") or "").split("\n")[0][:200],
        "license_classifiers": "; ".join(classifiers),
        "home_page": msg.get("Home-page", "") or "",
    }


def fetch_pypi(requirements: list[str], root: str | Path) -> dict:
    """Download and unpack the requirements under root (``dl/`` wheels, ``src/`` one folder each).

    Returns the manifest (also written to ``root/manifest.json``): one entry per package with
    name, version and the license fields of its metadata, plus the requirements that failed.
    """
    root = Path(root)
    dl, src = root / "dl", root / "src"
    dl.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}
    have = {_wheel_name(w)[0] for w in dl.glob("*.whl")}
    for req in tqdm(requirements, desc="pip download", unit="pkg"):
        if req.lower().replace("_", "-") in have:
            continue
        try:
            _download(req, dl)
        except subprocess.CalledProcessError as exc:
            failed[req] = (exc.stderr or "").strip().splitlines()[-1:][0] if exc.stderr else "pip failed"
    packages = []
    for wheel in tqdm(sorted(dl.glob("*.whl")), desc="unpack", unit="wheel"):
        folder = _unpack(wheel, src)
        packages.append({"folder": folder.name, "wheel": wheel.name, **_metadata(folder)})
    manifest = {"packages": packages, "failed": failed}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def stage_tree(
    source: str | Path,
    dest: str | Path,
    excludes: tuple[str, ...] = STDLIB_EXCLUDES,
    suffixes: tuple[str, ...] = (".py",),
) -> int:
    """Copy a tree's source files (and its top-level license files) to dest; returns the file count."""
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise CorpusError(f"source tree {source} does not exist; pass the folder of the sources to copy.")
    count = 0
    for dirpath, dirnames, filenames in os.walk(source):
        rel_dir = Path(dirpath).relative_to(source)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not any(fnmatch.fnmatch(f"{(rel_dir / d).as_posix()}/x", pat) for pat in excludes)
        )
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            top_license = rel_dir == Path(".") and name in _LICENSE_FILE_NAMES
            if not top_license and (
                not name.endswith(suffixes) or any(fnmatch.fnmatch(rel, p) for p in excludes)
            ):
                continue
            target = dest / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(dirpath) / name, target)
            count += 1
    return count
