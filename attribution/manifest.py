"""The index manifest: ``manifest.json`` at the top of an index folder.

It names the format and its version, the fingerprinting and LSH parameters, the false-positive
rate of the exact-span membership test, counts, and the list of complete segments. It is
replaced atomically (written to a temporary file, then renamed) and written last, so its
presence means the index is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from attribution.errors import CorruptIndexError, IndexNotFoundError, IndexVersionError
from attribution.fingerprint import FingerprintParams
from attribution.segment import SegmentParams

__all__ = ["FORMAT", "VERSION", "MANIFEST", "read_manifest", "write_manifest", "new_manifest", "params_of"]

FORMAT = "stackcoder-attribution-index"
VERSION = 2  # 2: token hashes from the token's characters (no vocabulary)
MANIFEST = "manifest.json"


def new_manifest(fingerprint: FingerprintParams, segment: SegmentParams) -> dict:
    """A manifest for an empty index."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": asdict(fingerprint),
        "segment": asdict(segment),
        "membership": {
            "kind": "sorted uint64 array of window hashes, binary search (numpy.searchsorted)",
            "hash": "64-bit polynomial over code points + MurmurHash3 fmix64",
            "false_positive_rate_per_window": 0.0,
        },
        "counts": {"files": 0, "lines": 0, "windows": 0, "chunks": 0},
        "segments": [],
    }


def params_of(manifest: dict) -> tuple[FingerprintParams, SegmentParams]:
    """The parameters a manifest records."""
    try:
        return FingerprintParams(**manifest["fingerprint"]), SegmentParams(**manifest["segment"])
    except (KeyError, TypeError) as exc:
        raise CorruptIndexError(
            f"the index manifest lacks valid parameters ({exc}); rebuild the index."
        ) from exc


def read_manifest(folder: Path) -> dict:
    """Read and check a manifest (format, version, structure)."""
    if not folder.is_dir():
        raise IndexNotFoundError(
            f"no index at {folder}; build one with `stackcoder index build SOURCE... --out {folder}`."
        )
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"{folder} holds no complete index (no {MANIFEST}); build it with `stackcoder index build SOURCE... --out {folder}`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(
            f"the manifest of the index at {folder} is damaged ({exc}); rebuild the index."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptIndexError(
            f"{folder} is not a stackcoder attribution index; rebuild it with `stackcoder index build`."
        )
    if manifest.get("version") != VERSION:
        raise IndexVersionError(
            f"the index at {folder} has format version {manifest.get('version')!r} but this stackcoder reads "
            f"version {VERSION}; rebuild it with `stackcoder index build`."
        )
    if not isinstance(manifest.get("segments"), list):
        raise CorruptIndexError(
            f"the manifest of the index at {folder} lists no segments; rebuild the index."
        )
    for entry in manifest["segments"]:
        _check_segment_name(folder, entry)
    return manifest


def _check_segment_name(folder: Path, entry: object) -> None:
    """A segment is a plain sub-folder of the index: no separators, no '..', no link leading out."""
    name = entry.get("name") if isinstance(entry, dict) else None
    inside = False
    if isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name:
        try:
            inside = (folder / name).resolve().parent == folder.resolve()
        except OSError:
            inside = False
    if not inside:
        raise CorruptIndexError(
            f"the manifest of the index at {folder} names a segment {name!r} outside the index folder; "
            "rebuild the index."
        )


def write_manifest(folder: Path, manifest: dict) -> None:
    """Replace the manifest atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
