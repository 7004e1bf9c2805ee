"""The model catalog: the real models the product runs, as data (``engine/catalog.json``).

Each entry names one GGUF file, its size and sha256, its license and upstream, and where its bytes
come from (pinned wheels on the package index whose data members, concatenated, are the file).
An entry may instead be a LoRA adapter trained by ``stackcoder train adapt`` and committed in the
repository (``models/<name>/``, a bundle whose ``adapter.gguf`` is pinned by sha256) on a base
model of the catalog: it is ready once its base is pulled. ``engine.pull`` fetches and verifies an
entry into the cache; ``Catalog.pulled_path`` finds a ready one.

    from engine.catalog import load_catalog
    entry = load_catalog().get("qwen2.5-coder-1.5b-instruct")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelNotFoundError
from engine.paths import REPO_ROOT, cache_dir, embedded_model_path

__all__ = [
    "AdapterRef",
    "Catalog",
    "CatalogEntry",
    "DefaultModel",
    "WheelPart",
    "default_model",
    "load_catalog",
    "models_dir",
]

CATALOG_FILE = Path(__file__).with_name("catalog.json")
VERIFIED_MARKER = "stackcoder-model.json"  # written after the sha256 matched: the file is complete


@dataclass(frozen=True)
class WheelPart:
    """One pinned wheel whose single data member is the next slice of the model file."""

    project: str
    version: str
    filename: str
    sha256: str
    size: int
    member: str  # path of the data file inside the wheel


@dataclass(frozen=True)
class AdapterRef:
    """An entry that is a LoRA adapter committed in the repository, applied to a catalog base model."""

    base: str  # catalog name of the base model
    bundle: str  # the adapter's bundle folder, relative to the repository root


@dataclass(frozen=True)
class CatalogEntry:
    """A model the catalog knows: the file, how to verify it, and where it comes from.

    For an adapter entry (``adapter`` set) the file is the bundle's GGUF LoRA adapter and there are
    no wheels: the bytes are in the repository, the base is pulled by its own entry."""

    name: str
    description: str
    architecture: str
    parameters: str
    file: str
    size: int
    sha256: str
    license: str
    upstream: str
    index: str
    source_note: str
    wheels: tuple[WheelPart, ...]
    adapter: AdapterRef | None = None

    @property
    def folder(self) -> Path:
        """Where the pulled model lives: ``<cache>/models/<name>`` (an adapter's bundle folder)."""
        if self.adapter is not None:
            return REPO_ROOT / self.adapter.bundle
        return models_dir() / self.name

    @property
    def path(self) -> Path:
        """The model file once pulled and verified."""
        return self.folder / self.file

    def is_pulled(self) -> bool:
        """Whether the file is in place with the marker that a full sha256 check passed (an adapter's
        file is hashed: it is small)."""
        if self.adapter is not None:
            from engine.loading import file_sha256

            return (
                self.path.is_file()
                and self.path.stat().st_size == self.size
                and file_sha256(self.path) == self.sha256
            )
        marker = self.folder / VERIFIED_MARKER
        if not (self.path.is_file() and marker.is_file()):
            return False
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        stat = self.path.stat()
        return (
            recorded.get("sha256") == self.sha256
            and recorded.get("size") == stat.st_size == self.size
            and recorded.get("mtime_ns") == stat.st_mtime_ns
        )


@dataclass(frozen=True)
class Catalog:
    """Every entry, and which one the product uses for completion and for chat."""

    entries: dict[str, CatalogEntry]
    default_completion: str
    default_chat: str

    def get(self, name: str) -> CatalogEntry:
        """The entry called ``name``, or an error listing the known names."""
        entry = self.entries.get(name)
        if entry is None:
            raise ModelNotFoundError(
                f"no model called {name!r} in the catalog; choose one of {', '.join(sorted(self.entries))} "
                "(`stackcoder models list`)."
            )
        return entry

    def is_ready(self, name: str) -> bool:
        """Whether ``name`` can be loaded: pulled and verified, and so is an adapter's base."""
        entry = self.get(name)
        return entry.is_pulled() and (entry.adapter is None or self.get(entry.adapter.base).is_pulled())

    def download_size(self, name: str) -> int:
        """Bytes a pull of ``name`` fetches or checks: the file, and an adapter's base."""
        entry = self.get(name)
        return entry.size + (self.get(entry.adapter.base).size if entry.adapter else 0)

    def pulled_path(self, name: str) -> Path:
        """The verified file of ``name`` (an adapter's bundle folder), or an error saying how to pull it."""
        entry = self.get(name)
        if entry.adapter is not None:
            if not entry.is_pulled():
                raise ModelNotFoundError(
                    f"{entry.path} is missing or does not match the catalog's sha256 {entry.sha256[:16]}…; "
                    f"restore it from the repository (git checkout -- {entry.adapter.bundle})."
                )
            if not self.get(entry.adapter.base).is_pulled():
                raise ModelNotFoundError(
                    f"the base of {name}, {entry.adapter.base}, is not pulled yet; run `stackcoder models pull {name}` "
                    f"({self.download_size(name) / 1e9:.1f} GB from the package index, verified by sha256)."
                )
            return entry.folder
        if not entry.is_pulled():
            raise ModelNotFoundError(
                f"the model {name} is not pulled yet; run `stackcoder models pull {name}` "
                f"({entry.size / 1e9:.1f} GB from the package index, verified by sha256)."
            )
        return entry.path


def models_dir() -> Path:
    """Folder of pulled catalog models: $STACKCODER_MODELS, else ``<cache>/models``."""
    import os

    env = os.environ.get("STACKCODER_MODELS")
    return Path(env).expanduser() if env else cache_dir() / "models"


def _entry(name: str, raw: dict) -> CatalogEntry:
    source = raw["source"]
    kind = source.get("kind")
    if kind not in ("pypi-wheel-parts", "repository-adapter"):
        raise ValueError(f"catalog entry {name}: unknown source kind {kind!r}")
    adapter = kind == "repository-adapter"
    return CatalogEntry(
        name=name,
        description=raw["description"],
        architecture=raw["architecture"],
        parameters=raw["parameters"],
        file=raw["file"],
        size=int(raw["size"]),
        sha256=raw["sha256"],
        license=raw["license"],
        upstream=raw["upstream"],
        index="" if adapter else source["index"],
        source_note=source["note"],
        wheels=() if adapter else tuple(WheelPart(**wheel) for wheel in source["wheels"]),
        adapter=AdapterRef(base=source["base"], bundle=source["bundle"]) if adapter else None,
    )


def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    """Read the catalog file (format 1)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("format") != 1:
        raise ValueError(f"{path}: catalog format {raw.get('format')!r}, this engine reads format 1")
    entries = {name: _entry(name, item) for name, item in raw["models"].items()}
    for entry in entries.values():
        if entry.adapter is not None and entry.adapter.base not in entries:
            raise ValueError(f"{path}: the base {entry.adapter.base!r} of {entry.name} is not in the catalog")
    defaults = raw["defaults"]
    for role in ("completion", "chat"):
        if defaults[role] not in entries:
            raise ValueError(f"{path}: the default {role} model {defaults[role]!r} is not in the catalog")
    return Catalog(entries, defaults["completion"], defaults["chat"])


@dataclass(frozen=True)
class DefaultModel:
    """The model used when none is named, and why it is the embedded fallback when it is."""

    reference: str  # a catalog name or a path
    fallback_reason: str | None = None  # None unless the catalog's default could not be used


def default_model(role: str = "completion") -> DefaultModel:
    """$STACKCODER_MODEL, else the catalog's default model for ``role`` ("completion" or "chat")
    when it is pulled, else the embedded ``stackcoder-mini`` with the reason."""
    import os

    env = os.environ.get("STACKCODER_MODEL")
    if env:
        return DefaultModel(env)
    catalog = load_catalog()
    name = catalog.default_completion if role == "completion" else catalog.default_chat
    if catalog.is_ready(name):
        return DefaultModel(name)
    return fallback_model(f"the default model {name} is not pulled (run `stackcoder models pull`)")


def fallback_model(reason: str) -> DefaultModel:
    """The embedded ``stackcoder-mini``, used because of ``reason``."""
    return DefaultModel(
        str(embedded_model_path()), f"{reason}; using the small embedded model stackcoder-mini"
    )
